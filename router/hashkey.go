package router

import (
	"strings"

	"github.com/sluice-gw/sluice/balancer"
	"github.com/sluice-gw/sluice/plugin"
)

// HashKey is a chash upstream's compiled key for hash_on vars (one variable
// name) or vars_combinations ("$request_uri-$http_x_user"): literal text and
// variables read as a route's vars read them (host lowercased without its
// port, request_uri, args, http_*, arg_*, cookie_*, …).
type HashKey struct {
	segs []hashSeg
}

type hashSeg struct {
	lit    []byte
	ref    plugin.Var
	hasRef bool
	def    []byte // ${name ?? def}
	hasDef bool
}

// compileHashKey compiles u's key; the zero HashKey (Valid false) when u
// does not hash on variables.
func compileHashKey(u *balancer.Upstream) HashKey {
	if u.Kind != balancer.CHash {
		return HashKey{}
	}
	switch u.HashOn {
	case balancer.HashVars:
		name := strings.TrimPrefix(u.HashKey, "$")
		return HashKey{segs: []hashSeg{{ref: plugin.ParseVar(name), hasRef: true}}}
	case balancer.HashVarsCombinations:
		k := HashKey{}
		for _, p := range plugin.ParseTemplate(u.HashKey) {
			if p.Literal() {
				k.segs = append(k.segs, hashSeg{lit: []byte(p.Lit)})
				continue
			}
			k.segs = append(k.segs, hashSeg{ref: plugin.ParseVar(p.Var), hasRef: true, def: []byte(p.Def), hasDef: p.HasDef})
		}
		return k
	}
	return HashKey{}
}

// Valid reports whether k was compiled from a variable key.
func (k HashKey) Valid() bool { return len(k.segs) > 0 }

// Append appends k's value for r to dst; a missing variable adds nothing.
// It allocates nothing when dst has room.
func (k *HashKey) Append(dst []byte, r *Request) []byte {
	var c evalCtx
	c.init(r)
	for i := range k.segs {
		s := &k.segs[i]
		dst = append(dst, s.lit...)
		if s.hasRef {
			v := c.get(&s.ref)
			if v == nil && s.hasDef {
				v = s.def
			}
			dst = append(dst, v...)
		}
	}
	return dst
}
