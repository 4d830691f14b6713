package http1

import (
	"bufio"
	"bytes"
	"net/http"
	"strconv"
	"testing"
)

// benchRequest is an OpenAI-style chat completion request head (~350 bytes).
const benchRequest = "POST /chat/completions HTTP/1.1\r\n" +
	"Host: api.openai.example.com\r\n" +
	"User-Agent: OpenAI/Python 1.54.4\r\n" +
	"Authorization: Bearer sk-proj-4f9aXq2LbT8vR1mN7cD3eH6kJ0pW5sY2uZ9oI4gA\r\n" +
	"Content-Type: application/json\r\n" +
	"Content-Length: 1532\r\n" +
	"Accept: application/json\r\n" +
	"Accept-Encoding: gzip, deflate\r\n" +
	"Connection: keep-alive\r\n" +
	"X-Request-Id: 6f1c2a9e-8b4d-4e0f-9a7c-3d5e2b1f0a88\r\n" +
	"\r\n"

// benchResponse is a streaming (SSE) response head from an LLM upstream.
const benchResponse = "HTTP/1.1 200 OK\r\n" +
	"Date: Tue, 04 Mar 2025 10:15:42 GMT\r\n" +
	"Content-Type: text/event-stream; charset=utf-8\r\n" +
	"Transfer-Encoding: chunked\r\n" +
	"Connection: keep-alive\r\n" +
	"Cache-Control: no-cache\r\n" +
	"X-Request-Id: 6f1c2a9e-8b4d-4e0f-9a7c-3d5e2b1f0a88\r\n" +
	"\r\n"

// benchEvents are the SSE events of a short streamed completion; benchChunked
// frames each as one chunk, as an upstream flushing per event does.
var benchEvents = []string{
	"data: {\"choices\":[{\"delta\":{\"content\":\"Hello\"},\"index\":0}]}\n\n",
	"data: {\"choices\":[{\"delta\":{\"content\":\" wor\"},\"index\":0}]}\n\n",
	"data: {\"choices\":[{\"delta\":{\"content\":\"ld\"},\"index\":0}]}\n\n",
	"data: [DONE]\n\n",
}

var benchChunked, benchPayload = chunkBody(benchEvents...)

// chunkBody frames the non-empty parts as a chunked body and returns it
// with the payload.
func chunkBody(parts ...string) (body, payload string) {
	for _, p := range parts {
		if p == "" {
			continue // an empty chunk would end the body
		}
		body += strconv.FormatInt(int64(len(p)), 16) + "\r\n" + p + "\r\n"
		payload += p
	}
	return body + "0\r\n\r\n", payload
}

func BenchmarkParseRequest(b *testing.B) {
	buf := []byte(benchRequest)
	r := Request{Headers: make([]Header, 0, DefaultMaxHeaders)}
	lim := &Limits{}
	b.ReportAllocs()
	b.SetBytes(int64(len(buf)))
	for b.Loop() {
		if n, err := ParseRequest(&r, buf, lim); err != nil || n != len(buf) {
			b.Fatal(n, err)
		}
	}
}

// BenchmarkParseRequestNetHTTP is the baseline twin: net/http's parser on the
// same head.
func BenchmarkParseRequestNetHTTP(b *testing.B) {
	buf := []byte(benchRequest)
	rd := bytes.NewReader(buf)
	br := bufio.NewReader(rd)
	b.ReportAllocs()
	b.SetBytes(int64(len(buf)))
	for b.Loop() {
		rd.Reset(buf)
		br.Reset(rd)
		if _, err := http.ReadRequest(br); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseResponse(b *testing.B) {
	buf := []byte(benchResponse)
	r := Response{Headers: make([]Header, 0, DefaultMaxHeaders)}
	b.ReportAllocs()
	b.SetBytes(int64(len(buf)))
	for b.Loop() {
		if n, err := ParseResponse(&r, buf, nil); err != nil || n != len(buf) || !r.Chunked {
			b.Fatal(n, err)
		}
	}
}

func BenchmarkChunked(b *testing.B) {
	buf := []byte(benchChunked)
	var c Chunked
	b.ReportAllocs()
	b.SetBytes(int64(len(buf)))
	for b.Loop() {
		c.Reset()
		total := 0
		for p := buf; ; {
			n, data, done, err := c.Next(p)
			if err != nil {
				b.Fatal(err)
			}
			total += len(data)
			if done {
				break
			}
			p = p[n:]
		}
		if total != len(benchPayload) {
			b.Fatal("payload", total)
		}
	}
}

func BenchmarkAppendRequest(b *testing.B) {
	var r Request
	if _, err := ParseRequest(&r, []byte(benchRequest), nil); err != nil {
		b.Fatal(err)
	}
	dst := make([]byte, 0, 1024)
	b.ReportAllocs()
	b.SetBytes(int64(len(benchRequest)))
	for b.Loop() {
		dst = AppendRequest(dst[:0], &r)
	}
	if len(dst) != len(benchRequest) {
		b.Fatal(len(dst))
	}
}
