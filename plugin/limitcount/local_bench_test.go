package limitcount

import (
	"strconv"
	"sync/atomic"
	"testing"
)

// BenchmarkLocalAccess: the local policy's access phase, one key (every
// goroutine contends on the same counter) and one key per goroutine.
func BenchmarkLocalAccess(b *testing.B) {
	for _, shared := range []bool{true, false} {
		b.Run("shared="+strconv.FormatBool(shared), func(b *testing.B) {
			in := compile(b, b.Name(), `{"count":1000000000,"time_window":3600}`)
			var next atomic.Int64
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				addr := "10.0.0.1"
				if !shared {
					addr = "10.0.1." + strconv.Itoa(int(next.Add(1))%250)
				}
				c := request(b, get, addr)
				req, ra := c.Req, c.RemoteAddr
				for pb.Next() {
					c.Reset()
					c.Req, c.RemoteAddr, c.Now = req, ra, t0
					if in.Access(c).Status != 0 {
						b.Fatal("rejected")
					}
				}
			})
		})
	}
}
