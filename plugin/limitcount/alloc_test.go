//go:build !race

package limitcount

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestLocalAccessAlloc: the local policy's access phase does not allocate
// in the steady state (a key's window exists), admitted or rejected, for
// key remote_addr, a header and a var_combination.
func TestLocalAccessAlloc(t *testing.T) {
	for _, tc := range []struct{ name, conf string }{
		{"remote_addr", `{"count":100,"time_window":60}`},
		{"remote_addr_rejected", `{"count":1,"time_window":60,"rejected_msg":"no"}`},
		{"http_header", `{"count":100,"time_window":60,"key":"http_x_user"}`},
		{"header_fallback", `{"count":100,"time_window":60,"key":"http_x_missing"}`},
		{"var_combination", `{"count":100,"time_window":60,"key_type":"var_combination","key":"$remote_addr $http_x_user"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := compile(t, t.Name(), tc.conf)
			c := request(t, get, "2001:db8::7")
			req, addr := c.Req, c.RemoteAddr
			run := func() {
				c.Reset()
				c.Req, c.RemoteAddr, c.Now, c.RouteID = req, addr, t0, "r1"
				in.Access(c)
			}
			run()
			run() // window exists; buffers grown
			require.NotEmpty(t, c.RespHeaders())
			assert.Zero(t, testing.AllocsPerRun(200, run))
		})
	}
}
