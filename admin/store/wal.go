package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"strconv"
)

// The embedded store's file format (dir/store.log):
//
//	file   = magic record*
//	magic  = "SLUICE1\n"                                 (8 bytes)
//	record = length:uint32le crc:uint32le payload        (8-byte header)
//	crc    = CRC-32C (Castagnoli) of the 4 length bytes followed by payload
//	payload (JSON, length bytes):
//	  {"op":"put","rev":N,"key":"/apisix/routes/1","value":<the JSON value verbatim>}
//	  {"op":"put","rev":N,"key":"…","value_b64":"…"}    (a value that is not valid JSON)
//	  {"op":"del","rev":N,"key":"…"}
//	  {"op":"rev","rev":N}                              (snapshot: the store revision)
//
// A write appends one record with a single write(2) and fsyncs the file
// before the call returns. A snapshot (compaction) is a complete file of
// "put" records plus one "rev" record, written beside the log, fsync'd and
// renamed over it.

const (
	logMagic  = "SLUICE1\n"
	recHeader = 8
	// maxRecord bounds one record's payload. Admin API bodies are at most
	// 1 MiB; a length beyond this can only be garbage.
	maxRecord = 64 << 20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

type logOp struct {
	Op       string          `json:"op"`
	Rev      int64           `json:"rev"`
	Key      string          `json:"key,omitempty"`
	Value    json.RawMessage `json:"value,omitempty"`
	ValueB64 []byte          `json:"value_b64,omitempty"`
}

// value returns the stored bytes (a fresh copy).
func (o *logOp) value() []byte {
	if o.ValueB64 != nil {
		return o.ValueB64
	}
	if o.Value == nil {
		return []byte{}
	}
	return append([]byte(nil), o.Value...)
}

// appendRecord appends one framed record to dst. Values that are valid
// JSON are embedded verbatim (encoding/json would re-compact them, so the
// payload is built by hand); anything else goes base64-encoded.
func appendRecord(dst []byte, op string, rev int64, key string, value []byte) []byte {
	start := len(dst)
	dst = append(dst, make([]byte, recHeader)...)
	dst = append(dst, `{"op":`...)
	dst = strconv.AppendQuote(dst, op) // op is one of a few ASCII words
	dst = append(dst, `,"rev":`...)
	dst = strconv.AppendInt(dst, rev, 10)
	if op != "rev" {
		k, _ := json.Marshal(key) // a string always marshals
		dst = append(dst, `,"key":`...)
		dst = append(dst, k...)
	}
	if op == "put" {
		if len(value) > 0 && json.Valid(value) {
			dst = append(dst, `,"value":`...)
			dst = append(dst, value...)
		} else {
			b, _ := json.Marshal(value) // []byte → base64 string
			dst = append(dst, `,"value_b64":`...)
			dst = append(dst, b...)
		}
	}
	dst = append(dst, '}')
	n := len(dst) - start - recHeader
	binary.LittleEndian.PutUint32(dst[start:], uint32(n))
	crc := crc32.Checksum(dst[start:start+4], castagnoli)
	crc = crc32.Update(crc, castagnoli, dst[start+recHeader:])
	binary.LittleEndian.PutUint32(dst[start+4:], crc)
	return dst
}

// CorruptError reports a store file that cannot be read back safely. The
// store refuses to start rather than start empty or lose later records.
type CorruptError struct {
	File   string
	Offset int64
	Reason string
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("store: %s is corrupt at offset %d: %s; refusing to start "+
		"(restore the file from a backup, or move it away to start with an empty store)",
		e.File, e.Offset, e.Reason)
}

// scanLog walks the records after the magic. For each complete record it
// calls fn(offset, op). It returns the offset where valid data ends and
// whether the bytes after it are a torn final record (crash during an
// append), which the caller truncates away. Anything else that does not
// parse is a *CorruptError.
func scanLog(file string, data []byte, fn func(off int64, op *logOp) error) (end int64, torn bool, err error) {
	if len(data) < len(logMagic) || string(data[:len(logMagic)]) != logMagic {
		return 0, false, &CorruptError{File: file, Offset: 0, Reason: "not a sluice store log (bad magic)"}
	}
	off := int64(len(logMagic))
	size := int64(len(data))
	for off < size {
		rest := data[off:]
		if isZero(rest) {
			// The file was extended but the data never reached the disk
			// (a crash mid-append on a filesystem that does that).
			return off, true, nil
		}
		if len(rest) < recHeader {
			return off, true, nil
		}
		n := int64(binary.LittleEndian.Uint32(rest))
		if n == 0 || n > maxRecord {
			return off, false, &CorruptError{File: file, Offset: off, Reason: fmt.Sprintf("bad record length %d", n)}
		}
		if recHeader+n > int64(len(rest)) {
			// The record runs past the end of the file: the last append
			// did not complete — unless a complete record follows, and
			// then this length is damaged, not torn.
			if at := nextRecord(rest[1:]); at >= 0 {
				return off, false, &CorruptError{File: file, Offset: off, Reason: fmt.Sprintf("bad record length %d (a complete record follows at offset %d)", n, off+1+int64(at))}
			}
			return off, true, nil
		}
		payload := rest[recHeader : recHeader+n]
		want := binary.LittleEndian.Uint32(rest[4:])
		crc := crc32.Checksum(rest[:4], castagnoli)
		crc = crc32.Update(crc, castagnoli, payload)
		last := off+recHeader+n == size
		if crc != want {
			if last {
				return off, true, nil
			}
			return off, false, &CorruptError{File: file, Offset: off, Reason: "checksum mismatch"}
		}
		var op logOp
		dec := json.NewDecoder(bytes.NewReader(payload))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&op); err != nil {
			return off, false, &CorruptError{File: file, Offset: off, Reason: "undecodable record: " + err.Error()}
		}
		switch op.Op {
		case "put", "del":
			if op.Key == "" || op.Rev <= 0 {
				return off, false, &CorruptError{File: file, Offset: off, Reason: "record without key or revision"}
			}
		case "rev":
		default:
			return off, false, &CorruptError{File: file, Offset: off, Reason: fmt.Sprintf("unknown op %q", op.Op)}
		}
		if err := fn(off, &op); err != nil {
			return off, false, err
		}
		off += recHeader + n
	}
	return off, false, nil
}

// nextRecord returns the offset in b of the first complete record (a
// plausible length and a matching checksum), or -1.
func nextRecord(b []byte) int {
	for i := 0; i+recHeader <= len(b); i++ {
		n := int(binary.LittleEndian.Uint32(b[i:]))
		if n == 0 || n > maxRecord || i+recHeader+n > len(b) {
			continue
		}
		crc := crc32.Checksum(b[i:i+4], castagnoli)
		if crc32.Update(crc, castagnoli, b[i+recHeader:i+recHeader+n]) == binary.LittleEndian.Uint32(b[i+4:]) {
			return i
		}
	}
	return -1
}

func isZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
