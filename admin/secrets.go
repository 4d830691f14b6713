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
	switch res {
	case "ssls":
		delete(m, "key")
		delete(m, "keys")
	case "consumers":
		if plugins, ok := m["plugins"].(map[string]any); ok {
			for _, conf := range plugins {
				if c, ok := conf.(map[string]any); ok {
					for k, v := range c {
						if s, ok := v.(string); ok && s != "" && consumerSecrets[k] {
							c[k] = mask
						}
					}
				}
			}
		}
	}
	maskDeep(m)
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

// maskDeep replaces secret-named string fields at any depth.
func maskDeep(v any) {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if s, ok := e.(string); ok && s != "" && isSecretName(k) {
				x[k] = mask
				continue
			}
			maskDeep(e)
		}
	case []any:
		for _, e := range x {
			maskDeep(e)
		}
	}
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
	if res == "consumers" {
		if plugins, ok := m["plugins"].(map[string]any); ok {
			for name, conf := range plugins {
				if c, ok := conf.(map[string]any); ok {
					for k, v := range c {
						if v == mask && consumerSecrets[k] {
							return "plugins." + name + "." + k
						}
					}
				}
			}
		}
	}
	return maskedPath(m, "")
}

// maskedPath finds a secret-named field holding the mask at any depth.
func maskedPath(v any, at string) string {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			p := k
			if at != "" {
				p = at + "." + k
			}
			if e == mask && isSecretName(k) {
				return p
			}
			if r := maskedPath(e, p); r != "" {
				return r
			}
		}
	case []any:
		for _, e := range x {
			if r := maskedPath(e, at); r != "" {
				return r
			}
		}
	}
	return ""
}
