package admin

import (
	"bytes"
	"encoding/json"
	"strings"
)

// Secrets in responses (SPEC §4: never echoed in plain text). The store
// keeps them; only what the Admin API sends back is changed:
//
//   - ssls: "key" and "keys" (private keys) are left out, as APISIX does;
//   - consumers: the credential fields of plugins (key-auth "key",
//     basic-auth "password", jwt-auth "secret"/"private_key", hmac-auth
//     "secret_key", ...) read "******";
//   - every resource: fields named password, secret, secret_key,
//     private_key, client_secret, client_key (upstream tls) or ending in
//     _password / _secret (limit-count redis_password), at any depth,
//     read "******".
var (
	// consumerSecrets are plugin fields of a consumer that hold a
	// credential.
	consumerSecrets = map[string]bool{"key": true, "password": true, "secret": true}
	// anySecrets are field names that hold a secret wherever they appear.
	anySecrets = map[string]bool{
		"password": true, "secret": true, "secret_key": true, "private_key": true,
		"client_secret": true, "client_key": true,
	}
	secretHints = [][]byte{[]byte("password"), []byte("secret"), []byte("client_key"), []byte("private_key")}
)

// masked returns the stored value raw of resource res as responses show it.
func masked(res string, raw []byte) json.RawMessage {
	if res != "ssls" && res != "consumers" && !hasSecretHint(raw) {
		return raw
	}
	v, err := decodeAny(raw)
	if err != nil {
		return raw
	}
	m, ok := v.(map[string]any)
	if !ok {
		return raw
	}
	if res == "ssls" {
		delete(m, "key")
		delete(m, "keys")
	}
	eachSecret(res, m, func(_ string, obj map[string]any, k string) bool {
		if s, ok := obj[k].(string); ok && s != "" {
			obj[k] = mask
		}
		return true
	})
	out, err := encode(m)
	if err != nil {
		return raw
	}
	return out
}

func hasSecretHint(raw []byte) bool {
	if bytes.Contains(raw, []byte(`\u`)) {
		return true // an escaped name ("redis_\u0070assword") could hide one
	}
	for _, h := range secretHints {
		if bytes.Contains(raw, h) {
			return true
		}
	}
	return false
}

func isSecretName(k string) bool {
	return anySecrets[k] || strings.HasSuffix(k, "_password") || strings.HasSuffix(k, "_secret")
}

// eachSecret calls fn for every string field of item m (resource res) that
// holds a secret — a consumer plugin's credential, or a secret-named field
// at any depth — with its dotted path, until fn returns false.
func eachSecret(res string, m map[string]any, fn func(path string, obj map[string]any, key string) bool) {
	if res == "consumers" {
		if plugins, ok := m["plugins"].(map[string]any); ok {
			for name, conf := range plugins {
				if c, ok := conf.(map[string]any); ok {
					for k, v := range c {
						if _, ok := v.(string); ok && consumerSecrets[k] && !fn("plugins."+name+"."+k, c, k) {
							return
						}
					}
				}
			}
		}
	}
	eachSecretDeep(m, "", fn)
}

func eachSecretDeep(v any, at string, fn func(path string, obj map[string]any, key string) bool) bool {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			p := k
			if at != "" {
				p = at + "." + k
			}
			if _, ok := e.(string); ok && isSecretName(k) {
				if !fn(p, x, k) {
					return false
				}
				continue
			}
			if !eachSecretDeep(e, p, fn) {
				return false
			}
		}
	case []any:
		for _, e := range x {
			if !eachSecretDeep(e, at, fn) {
				return false
			}
		}
	}
	return true
}

// maskedInput returns the path of a secret field of item raw (resource
// res) whose value is the mask, or "".
func maskedInput(res string, raw []byte) string {
	if !bytes.Contains(raw, []byte(mask)) {
		return ""
	}
	v, err := decodeAny(raw)
	if err != nil {
		return ""
	}
	m, ok := v.(map[string]any)
	if !ok {
		return ""
	}
	found := ""
	eachSecret(res, m, func(path string, obj map[string]any, k string) bool {
		if obj[k] == mask {
			found = path
			return false
		}
		return true
	})
	return found
}
