package apibreaker

import "testing"

// BenchmarkAccessClosed is the common case: the route has a breaker
// configuration but this request's Host + URI never failed.
func BenchmarkAccessClosed(b *testing.B) {
	br := compile(b, `{"break_response_code":502}`)
	trip := newCtx(b, "gw", "/failing")
	trip.UpstreamStatus = 500
	br.Log(trip)
	c := newCtx(b, "api.example.com", "/v1/chat/completions")
	b.ReportAllocs()
	for b.Loop() {
		if br.Access(c).Status != 0 {
			b.Fatal("open")
		}
	}
}

// BenchmarkAccessOpen answers from an open breaker.
func BenchmarkAccessOpen(b *testing.B) {
	br := compile(b, `{"break_response_code":502,"unhealthy":{"failures":1}}`)
	c := newCtx(b, "api.example.com", "/v1/chat/completions")
	c.UpstreamStatus = 500
	br.Log(c)
	b.ReportAllocs()
	for b.Loop() {
		if br.Access(c).Status != 502 {
			b.Fatal("closed")
		}
	}
}

// BenchmarkLogUnhealthy counts a failure on an existing breaker.
func BenchmarkLogUnhealthy(b *testing.B) {
	br := compile(b, `{"break_response_code":502}`)
	c := newCtx(b, "api.example.com", "/v1/chat/completions")
	c.UpstreamStatus = 500
	br.Log(c)
	b.ReportAllocs()
	for b.Loop() {
		br.Log(c)
	}
}
