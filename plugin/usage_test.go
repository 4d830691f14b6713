package plugin

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sluice-gw/sluice/engine/http1"
)

// usageOf feeds body in pieces of size n (0 = whole) and returns the
// result; chunked bodies go through http1.Chunked first, as the engine
// relays them, and only their data reaches the scanner.
func usageOf(body []byte, chunked bool, n int) (int64, int64) {
	if n <= 0 {
		n = max(len(body), 1)
	}
	var pieces [][]byte
	for i := 0; i < len(body); i += n {
		pieces = append(pieces, body[i:min(i+n, len(body))])
	}
	return scanPieces(chunked, pieces...)
}

// scanPieces feeds pieces in order (chunked: their chunk data, until the
// last chunk or a framing error, as the engine does).
func scanPieces(chunked bool, pieces ...[]byte) (int64, int64) {
	var s UsageScanner
	s.Reset()
	var ch http1.Chunked
	var pending []byte
	for _, p := range pieces {
		if !chunked {
			s.Feed(p)
			continue
		}
		pending = append(pending, p...)
		for {
			k, data, done, err := ch.Next(pending)
			if err != nil {
				return s.Prompt(), s.Completion() // the engine answers 502 and stops
			}
			s.Feed(data)
			pending = pending[k:]
			if done {
				return s.Prompt(), s.Completion()
			}
			if k == 0 {
				break
			}
		}
	}
	return s.Prompt(), s.Completion()
}

// chunk encodes body with chunked framing, size bytes per chunk, with an
// extension on every other chunk and a trailer.
func chunk(body []byte, size int) []byte {
	var b []byte
	for i, k := 0, 0; i < len(body); i, k = i+size, k+1 {
		p := body[i:min(i+size, len(body))]
		b = append(b, strconv.FormatInt(int64(len(p)), 16)...)
		if k%2 == 1 {
			b = append(b, ";ext=1"...)
		}
		b = append(b, "\r\n"...)
		b = append(b, p...)
		b = append(b, "\r\n"...)
	}
	return append(b, "0\r\nX-Trailer: 1\r\n\r\n"...)
}

const chatJSON = `{"id":"chatcmpl-1","object":"chat.completion","choices":[{"index":0,` +
	`"message":{"role":"assistant","content":"the \"usage\":{\"prompt_tokens\":999} is a string"},"finish_reason":"stop"}],` +
	`"usage":{"prompt_tokens":19,"completion_tokens":10,"total_tokens":29,` +
	`"prompt_tokens_details":{"cached_tokens":7,"prompt_tokens":5555},"completion_tokens_details":{"reasoning_tokens":3}}}`

const chatSSE = "data: {\"id\":\"c\",\"choices\":[{\"delta\":{\"content\":\"Hel\"}}],\"usage\":null}\n\n" +
	"data: {\"id\":\"c\",\"choices\":[{\"delta\":{\"content\":\"lo \\\"usage\\\"\"}}],\"usage\":null}\n\n" +
	"data: {\"id\":\"c\",\"choices\":[],\"usage\":{\"prompt_tokens\":11,\"completion_tokens\":2,\"total_tokens\":13}}\n\n" +
	"data: [DONE]\n\n"

func TestUsageScanner(t *testing.T) {
	f := func(name, body string, wantP, wantC int64) {
		t.Helper()
		p, c := usageOf([]byte(body), false, 0)
		assert.Equal(t, wantP, p, "%s: prompt", name)
		assert.Equal(t, wantC, c, "%s: completion", name)
	}
	f("json", chatJSON, 19, 10)
	f("sse", chatSSE, 11, 2)
	f("pretty", "{\n  \"usage\" : {\n    \"completion_tokens\" : 4 ,\n    \"prompt_tokens\"\t:\t8\n  }\n}\n", 8, 4)
	f("empty", "", -1, -1)
	f("no usage", `{"choices":[]}`, -1, -1)
	f("usage null", `{"usage":null}`, -1, -1)
	f("usage string", `{"usage":"prompt_tokens"}`, -1, -1)
	f("usage as value", `{"a":"usage","b":{"prompt_tokens":3}}`, -1, -1)
	f("only prompt", `{"usage":{"prompt_tokens":3}}`, 3, -1)
	f("zero", `{"usage":{"prompt_tokens":0,"completion_tokens":0}}`, 0, 0)
	f("nested usage key", `{"response":{"id":"r","usage":{"input_tokens":36,"output_tokens":87,"output_tokens_details":{"reasoning_tokens":0}}}}`, 36, 87)
	f("escaped key", `{"usage":{"prompt\u005ftokens":3,"completion_tokens":1}}`, -1, 1)
	f("float", `{"usage":{"prompt_tokens":3.5,"completion_tokens":1e3}}`, -1, -1)
	f("negative", `{"usage":{"prompt_tokens":-3,"completion_tokens":2}}`, -1, 2)
	f("null member", `{"usage":{"prompt_tokens":null,"completion_tokens":"2"}}`, -1, -1)
	f("name as value", `{"usage":{"x":"prompt_tokens","y":[1,{"completion_tokens":5}],"completion_tokens":6}}`, -1, 6)
	f("truncated", `{"usage":{"prompt_tokens":3,"completion_tokens":1`, -1, -1)
	f("huge", `{"usage":{"prompt_tokens":99999999999999999999999,"completion_tokens":1}}`, -1, 1)
	// Anthropic: input in message_start, output in message_delta; the last
	// complete usage object that has a field wins for that field.
	f("anthropic", "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":25,\"output_tokens\":1}}}\n\n"+
		"event: message_delta\ndata: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":15}}\n\n", 25, 15)
	// An unterminated string in one event does not hide the next event.
	f("resync", "data: {\"content\":\"oops}\n\ndata: {\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":2}}\n\n", 1, 2)
	f("later wins", `{"usage":{"prompt_tokens":1,"completion_tokens":2}}{"usage":{"prompt_tokens":3,"completion_tokens":4}}`, 3, 4)
}

// TestUsageScannerSplit feeds every body split at every byte position
// (two pieces), byte by byte, and chunk-encoded with every chunk size,
// itself split at every position: the result never changes.
func TestUsageScannerSplit(t *testing.T) {
	for _, body := range []string{chatJSON, chatSSE} {
		b := []byte(body)
		wantP, wantC := usageOf(b, false, 0)
		require.NotEqual(t, int64(-1), wantP)
		for i := 0; i <= len(b); i++ {
			p, c := scanPieces(false, b[:i], b[i:])
			require.Equal(t, [2]int64{wantP, wantC}, [2]int64{p, c}, "split at %d", i)
		}
		p, c := usageOf(b, false, 1)
		assert.Equal(t, [2]int64{wantP, wantC}, [2]int64{p, c}, "byte by byte")
		for size := 1; size <= len(b); size += 1 + size/4 {
			cb := chunk(b, size)
			for i := 0; i <= len(cb); i++ {
				p, c := scanPieces(true, cb[:i], cb[i:])
				require.Equal(t, [2]int64{wantP, wantC}, [2]int64{p, c}, "chunk size %d, split at %d", size, i)
			}
			p, c := usageOf(cb, true, 1)
			require.Equal(t, [2]int64{wantP, wantC}, [2]int64{p, c}, "chunk size %d byte by byte", size)
		}
	}
}

func TestUsageScannerChunked(t *testing.T) {
	f := func(name, raw string, wantP, wantC int64) {
		t.Helper()
		p, c := usageOf([]byte(raw), true, 0)
		assert.Equal(t, [2]int64{wantP, wantC}, [2]int64{p, c}, name)
	}
	body := `{"usage":{"prompt_tokens":12,"completion_tokens":34}}`
	f("one chunk", fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", len(body), body), 12, 34)
	f("upper hex", fmt.Sprintf("%X\r\n%s\r\n0\r\n\r\n", len(body), body), 12, 34)
	f("LF only (bad framing: nothing read)", fmt.Sprintf("%x\n%s\n0\n\n", len(body), body), -1, -1)
	// The framing splits a key and a number: stripped, they still match.
	var split string
	for _, p := range []string{`{"usage":{"prompt`, `_tokens":1`, `2`, `,"completion_tokens"`, `:7}}`} {
		split += fmt.Sprintf("%x\r\n%s\r\n", len(p), p)
	}
	f("split key", split+"0\r\n\r\n", 12, 7)
	f("bad size", "zz\r\n"+body+"\r\n0\r\n\r\n", -1, -1)
	f("bad data end", fmt.Sprintf("%x\r\n%sXX0\r\n\r\n", len(body)-2, body), -1, -1)
	f("after last chunk", "0\r\n\r\n"+body, -1, -1)
}

// TestUsageScannerOracle compares the scanner with encoding/json on
// generated responses.
func TestUsageScannerOracle(t *testing.T) {
	for i := 0; i < 300; i++ {
		u := map[string]any{"total_tokens": i * 3}
		wantP, wantC := int64(-1), int64(-1)
		if i%3 != 0 {
			u["prompt_tokens"] = i
			wantP = int64(i)
		}
		if i%5 != 0 {
			u["completion_tokens"] = i * 7
			wantC = int64(i * 7)
		}
		if i%2 == 0 {
			u["prompt_tokens_details"] = map[string]any{"prompt_tokens": 1, "cached_tokens": i}
		}
		doc := map[string]any{
			"id":      "x" + strconv.Itoa(i),
			"choices": []any{map[string]any{"message": map[string]any{"content": strings.Repeat(`"usage":{"prompt_tokens":1} \ `, i%4)}}},
			"usage":   u,
		}
		b, err := json.Marshal(doc)
		require.NoError(t, err)
		for _, n := range []int{0, 1, 7, 64} {
			p, c := usageOf(b, false, n)
			require.Equal(t, [2]int64{wantP, wantC}, [2]int64{p, c}, "%s pieces of %d", b, n)
			p, c = usageOf(chunk(b, 13), true, n)
			require.Equal(t, [2]int64{wantP, wantC}, [2]int64{p, c}, "%s chunked, pieces of %d", b, n)
		}
	}
}

func FuzzUsageScanner(f *testing.F) {
	f.Add([]byte(chatJSON), uint16(5), uint16(17))
	f.Add([]byte(chatSSE), uint16(1), uint16(3))
	f.Add([]byte(`{"usage":{"prompt_tokens":1,"completion_tokens":2}}`), uint16(9), uint16(0))
	f.Add([]byte("data: {\"x\":\"\\\n{\"usage\":{\"input_tokens\":1}}"), uint16(2), uint16(2))
	f.Fuzz(func(t *testing.T, body []byte, split, size uint16) {
		wantP, wantC := usageOf(body, false, 0)
		if wantP < -1 || wantC < -1 {
			t.Fatalf("negative result %d %d", wantP, wantC)
		}
		// The result does not depend on where the pieces split.
		p, c := usageOf(body, false, int(split%64)+1)
		if p != wantP || c != wantC {
			t.Fatalf("pieces of %d: %d/%d, whole: %d/%d", split%64+1, p, c, wantP, wantC)
		}
		// Nor on the chunked framing around the same bytes.
		if len(body) > 0 {
			p, c = usageOf(chunk(body, int(size%97)+1), true, int(split%31)+1)
			if p != wantP || c != wantC {
				t.Fatalf("chunked by %d: %d/%d, plain: %d/%d", size%97+1, p, c, wantP, wantC)
			}
		}
		// Arbitrary framing never panics.
		usageOf(body, true, int(size%13)+1)
	})
}

func BenchmarkUsageScannerSSE(b *testing.B) {
	// A long streamed completion: many small events, usage in the last.
	var sb strings.Builder
	for i := 0; i < 400; i++ {
		fmt.Fprintf(&sb, "data: {\"id\":\"chatcmpl-%d\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"token %d \\\"q\\\"\"}}],\"usage\":null}\n\n", i, i)
	}
	sb.WriteString("data: {\"choices\":[],\"usage\":{\"prompt_tokens\":11,\"completion_tokens\":400}}\n\ndata: [DONE]\n\n")
	body := []byte(sb.String())
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	var s UsageScanner
	for b.Loop() {
		s.Reset()
		for i := 0; i < len(body); i += 256 {
			s.Feed(body[i:min(i+256, len(body))])
		}
	}
	if s.Completion() != 400 {
		b.Fatal("usage not found")
	}
}

func BenchmarkUsageScannerJSON(b *testing.B) {
	body := []byte(`{"id":"x","choices":[{"message":{"content":"` + strings.Repeat("lorem ipsum dolor sit amet, ", 2000) + `"}}],"usage":{"prompt_tokens":1,"completion_tokens":2}}`)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	var s UsageScanner
	for b.Loop() {
		s.Reset()
		s.Feed(body)
	}
	if s.Completion() != 2 {
		b.Fatal("usage not found")
	}
}

func TestScanUsage(t *testing.T) {
	f := func(ct, ce string, want bool) {
		t.Helper()
		var ctb, ceb []byte
		if ct != "-" {
			ctb = []byte(ct)
		}
		if ce != "" {
			ceb = []byte(ce)
		}
		assert.Equal(t, want, ScanUsage(ctb, ceb), "%q %q", ct, ce)
	}
	f("application/json", "", true)
	f("Application/JSON; charset=utf-8", "", true)
	f("text/event-stream", "", true)
	f("text/event-stream;charset=UTF-8", "identity", true)
	f("application/x-ndjson", "", true)
	f("application/vnd.api+json", "", true)
	f("-", "", true)
	f("application/json", "gzip", false)
	f("application/json", "br", false)
	f("text/plain", "", false)
	f("image/png", "", false)
	f("application/octet-stream", "", false)
	f("text/+json", "", false)
}
