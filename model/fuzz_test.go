package model

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// FuzzDecodeRoute: DecodeRoute and the lenient readers never panic; a route
// that decodes and validates, written back out with json.Marshal, decodes
// to an equal route that still validates, and DecodeRouteMatch reads the
// same match fields from it. Seeds are in testdata/fuzz/FuzzDecodeRoute.
func FuzzDecodeRoute(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		m := DecodeRouteMatch(data, errors.New("x"))
		DecodeServiceHosts(data, errors.New("x")) // the lenient readers never panic
		DecodeConsumerPlugins(data, errors.New("x"))
		r, err := DecodeRoute(data)
		_ = ForbidTimestamps(data)
		if err != nil {
			require.Nil(t, r)
			return
		}
		if r.Validate() != nil {
			return
		}
		if r.URI != "" || len(r.URIs) > 0 {
			require.NotNil(t, m, "%s", data)
			assert.Equal(t, [9]any{r.URI, r.URIs, r.Methods, r.Host, r.Hosts, r.RemoteAddr, r.RemoteAddrs, r.Priority, r.ServiceID},
				[9]any{m.URI, m.URIs, m.Methods, m.Host, m.Hosts, m.RemoteAddr, m.RemoteAddrs, m.Priority, m.ServiceID}, "%s", data)
		}
		out, err := json.Marshal(r)
		require.NoError(t, err)
		r2, err := DecodeRoute(out)
		require.NoError(t, err, "%s", out)
		require.NoError(t, r2.Validate(), "%s", out)
		assert.Equal(t, canonRoute(t, r), canonRoute(t, r2), "%s", out)
	})
}

// canonRoute returns a copy of r in which what JSON does not distinguish is
// made equal: an empty slice or map is nil (omitempty drops it), and raw
// JSON is re-encoded (json.Marshal compacts it and escapes HTML).
func canonRoute(t *testing.T, r *Route) *Route {
	c := *r
	c.Labels = nilIfEmptyMap(c.Labels)
	if len(c.Methods) == 0 {
		c.Methods = nil
	}
	c.Vars = canonRaw(t, c.Vars)
	c.Plugins = canonPlugins(t, c.Plugins)
	if r.Upstream != nil {
		u := *r.Upstream
		u.Labels = nilIfEmptyMap(u.Labels)
		u.Checks = canonRaw(t, u.Checks)
		u.nodesRaw = canonRaw(t, u.nodesRaw)
		c.Upstream = &u
	}
	return &c
}

func nilIfEmptyMap(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	return m
}

func canonPlugins(t *testing.T, m map[string]json.RawMessage) map[string]json.RawMessage {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]json.RawMessage, len(m))
	for k, v := range m {
		out[k] = canonRaw(t, v)
	}
	return out
}

// canonRaw decodes raw keeping numbers as written and encodes it again.
func canonRaw(t *testing.T, raw json.RawMessage) json.RawMessage {
	if raw == nil {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	require.NoError(t, dec.Decode(&v), "%s", raw)
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return b
}
