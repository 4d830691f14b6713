package router

import (
	"net/netip"
)

// Matching follows APISIX's default router, radixtree_host_uri
// (apisix/http/router/radixtree_host_uri.lua over lua-resty-radixtree):
//
//  1. Routes with host/hosts (or whose service has hosts) are tried first:
//     the exact host, then wildcard hosts ("*.foo.com") from the longest
//     suffix to the shortest. Each host has its own URI tree; when nothing
//     in it matches, the next host candidate is tried.
//  2. Then the routes without hosts.
//
// Within one URI tree: the exact-path bucket first, then prefix buckets from
// the longest prefix to the shortest. Within a bucket, routes are ordered by
// priority (higher first), then by the longer configured uri, then by
// configuration order. A route whose other conditions (methods,
// remote_addrs, vars) fail falls through to the next candidate.

// matcher holds a route's conditions besides host and uri.
type matcher struct {
	methods uint16         // bit per method (methodBit); 0 = any
	remote  []netip.Prefix // remote_addr(s); empty = any
	vars    *Expr          // nil = true

	seq    int // configuration order, for ties
	uriLen int // len of the configured uri, for ties (radixtree sort_route)
}

func (m *matcher) ok(c *evalCtx) bool {
	if m.methods != 0 && m.methods&methodBit(c.r.Method) == 0 {
		return false
	}
	if len(m.remote) > 0 {
		a := c.r.RemoteAddr.Unmap()
		if !a.IsValid() {
			return false
		}
		in := false
		for _, p := range m.remote {
			if p.Contains(a) {
				in = true
				break
			}
		}
		if !in {
			return false
		}
	}
	if m.vars == nil {
		return true
	}
	if m.vars.body && c.r.BodyPending {
		c.r.NeedBody = true // Match stops here: wait for the body
		return false
	}
	return m.vars.root.eval(c)
}

// methods APISIX's route schema accepts (schema_def.lua), one bit each.
var methodNames = [...]string{"GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "CONNECT", "TRACE", "PURGE"}

// methodBit returns m's bit, 0 for a method no route can list.
func methodBit(m []byte) uint16 {
	for i := range methodNames {
		if string(m) == methodNames[i] {
			return 1 << i
		}
	}
	return 0
}

// index is the compiled lookup structure of a Table.
type index struct {
	hostExact map[string]*uriTree // lowercased host
	hostWild  map[string]*uriTree // wildcard suffix: "*.foo.com" → ".foo.com"
	wildLens  []int               // distinct suffix lengths, longest first
	any       *uriTree            // routes without hosts
}

// uriTree matches paths.
type uriTree struct {
	exact map[string][]*Route
	root  *rnode // prefix routes; nil when there are none
}

// rnode is a node of a compressed radix tree over prefixes.
type rnode struct {
	label  string // edge label from the parent
	first  []byte // first byte of each child's label, parallel to kids
	kids   []*rnode
	parent *rnode
	routes []*Route // routes whose prefix ends here; nil for inner nodes
}

// Match returns the route for r, or nil (404). It reads only the Table
// (immutable) and r, so event loops call it concurrently; it does not
// allocate and does not lock. The returned *Route belongs to the Table.
func (t *Table) Match(r *Request) *Route {
	r.NeedBody = false
	var c evalCtx
	c.init(r)
	ix := &t.idx
	if ix.hostExact != nil || ix.hostWild != nil {
		if h := c.host(); len(h) > 0 && c.hostN != -2 {
			if u := ix.hostExact[string(h)]; u != nil {
				if rt := u.match(&c); rt != nil || r.NeedBody {
					return rt
				}
			}
			for _, n := range ix.wildLens {
				if n > len(h) {
					continue
				}
				if u := ix.hostWild[string(h[len(h)-n:])]; u != nil {
					if rt := u.match(&c); rt != nil || r.NeedBody {
						return rt
					}
				}
			}
		}
	}
	if ix.any != nil {
		return ix.any.match(&c)
	}
	return nil
}

func (u *uriTree) match(c *evalCtx) *Route {
	path := c.r.Path
	if u.exact != nil {
		for _, rt := range u.exact[string(path)] {
			if rt.match.ok(c) {
				return rt
			}
			if c.r.NeedBody {
				return nil
			}
		}
	}
	if u.root == nil {
		return nil
	}
	for n := u.root.deepest(path); n != nil; n = n.parent {
		for _, rt := range n.routes {
			if rt.match.ok(c) {
				return rt
			}
			if c.r.NeedBody {
				return nil
			}
		}
	}
	return nil
}

// deepest returns the deepest node whose full key is a prefix of path
// (lua-resty-radixtree's radix_tree_up then walks to the root).
func (n *rnode) deepest(path []byte) *rnode {
	i := 0
walk:
	for i < len(path) {
		c := path[i]
		for k, f := range n.first {
			if f != c {
				continue
			}
			kid := n.kids[k]
			if len(path)-i < len(kid.label) || string(path[i:i+len(kid.label)]) != kid.label {
				break walk
			}
			n = kid
			i += len(kid.label)
			continue walk
		}
		break
	}
	return n
}

// insert adds rt under prefix key, splitting edges as needed.
func (n *rnode) insert(key string, rt *Route) {
	for {
		if key == "" {
			n.routes = append(n.routes, rt)
			return
		}
		k := -1
		for i, f := range n.first {
			if f == key[0] {
				k = i
				break
			}
		}
		if k < 0 {
			kid := &rnode{label: key, parent: n, routes: []*Route{rt}}
			n.first = append(n.first, key[0])
			n.kids = append(n.kids, kid)
			return
		}
		kid := n.kids[k]
		common := 0
		for common < len(key) && common < len(kid.label) && key[common] == kid.label[common] {
			common++
		}
		if common < len(kid.label) {
			// Split kid's edge at common.
			mid := &rnode{label: kid.label[:common], parent: n}
			kid.label = kid.label[common:]
			kid.parent = mid
			mid.first = []byte{kid.label[0]}
			mid.kids = []*rnode{kid}
			n.kids[k] = mid
			kid = mid
		}
		n = kid
		key = key[common:]
	}
}

// walk calls f on every node of the tree.
func (n *rnode) walk(f func(*rnode)) {
	f(n)
	for _, k := range n.kids {
		k.walk(f)
	}
}
