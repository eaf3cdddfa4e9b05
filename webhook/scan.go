package webhook

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"unicode/utf8"
)

// The guard's fast path through an object's JSON. Most decisions in protected scope read a few
// metadata fields (labels, annotations, owner references) and, for updates of workloads, the
// pod template's restartedAt annotation; decoding the whole object with encoding/json for that
// scanned a 5 KiB Deployment twice and allocated for every field of it.
//
// scanObject makes one pass over the document: it checks that the whole document is JSON that
// encoding/json accepts (so a broken object is still rejected as malformed) and records where
// the values the guard reads are. It gives up (ok false) whenever the input is not plain: the
// top level is not an object, a key on a path it follows has escapes or non-ASCII bytes, a key
// matches a metadata field only case-insensitively (encoding/json would match it), a key on a
// path appears twice, or the nesting is deep. The caller then decodes with encoding/json, so
// the fast path either agrees with full decoding or is not taken (FuzzScanAgreesWithDecode).

// metaField indexes the metadata fields objectMeta decodes.
type metaField int

const (
	metaName metaField = iota
	metaGenerateName
	metaNamespace
	metaUID
	metaLabels
	metaAnnotations
	metaOwnerReferences
	metaFieldCount
)

// metaFieldNames are the JSON names of objectMeta's fields, by metaField.
var metaFieldNames = [metaFieldCount]string{"name", "generateName", "namespace", "uid", "labels", "annotations", "ownerReferences"}

// objectScan is what one pass over an object found: the raw values of the metadata fields and
// of spec.template.metadata.annotations, nil where absent.
type objectScan struct {
	meta                [metaFieldCount][]byte
	templateAnnotations []byte
}

// maxScanDepth is the nesting the scanner follows before it leaves the document to
// encoding/json (whose own limit is 10,000).
const maxScanDepth = 200

// scan levels: where in the document an object is, for the paths the scanner follows.
type scanLevel uint8

const (
	levelOther scanLevel = iota
	levelTop
	levelMeta
	levelSpec
	levelTemplate
	levelTemplateMeta
)

type scanner struct {
	data  []byte
	pos   int
	depth int
	out   *objectScan
}

// scanObject scans raw, an object's JSON. ok is false when the fast path does not apply and
// the object must be decoded with encoding/json.
func scanObject(raw []byte) (s objectScan, ok bool) {
	sc := scanner{data: raw, out: &s}
	sc.skipSpace()
	if sc.pos >= len(raw) || raw[sc.pos] != '{' {
		return s, false
	}
	if !sc.object(levelTop) {
		return s, false
	}
	sc.skipSpace()
	return s, sc.pos == len(raw)
}

func (sc *scanner) skipSpace() {
	if sc.pos < len(sc.data) && sc.data[sc.pos] > ' ' {
		// The API server writes JSON without spaces.
		return
	}
	for sc.pos < len(sc.data) {
		switch sc.data[sc.pos] {
		case ' ', '\t', '\n', '\r':
			sc.pos++
		default:
			return
		}
	}
}

// object scans an object at sc.pos (which is '{') at level lv.
func (sc *scanner) object(lv scanLevel) bool {
	sc.depth++
	if sc.depth > maxScanDepth {
		return false
	}
	sc.pos++ // '{'
	sc.skipSpace()
	if sc.pos < len(sc.data) && sc.data[sc.pos] == '}' {
		sc.pos++
		sc.depth--
		return true
	}
	var seen uint16
	for {
		if sc.pos >= len(sc.data) || sc.data[sc.pos] != '"' {
			return false
		}
		start := sc.pos
		plain, ok := sc.str()
		if !ok {
			return false
		}
		key := sc.data[start+1 : sc.pos-1]
		sc.skipSpace()
		if sc.pos >= len(sc.data) || sc.data[sc.pos] != ':' {
			return false
		}
		sc.pos++
		sc.skipSpace()
		if lv != levelOther && !plain {
			// An escaped or non-ASCII key may decode to a name the path follows.
			return false
		}
		child, field, bit := levelOther, metaField(-1), uint16(0)
		if lv != levelOther {
			if child, field, bit, ok = sc.route(lv, key); !ok {
				return false
			}
		}
		if bit != 0 {
			if seen&bit != 0 {
				return false
			}
			seen |= bit
		}
		vstart := sc.pos
		if child != levelOther && sc.pos < len(sc.data) && sc.data[sc.pos] == '{' {
			if !sc.object(child) {
				return false
			}
		} else {
			if lv == levelTop && child == levelMeta && !sc.isNull() {
				// metadata that is neither an object nor null is a type error for encoding/json.
				return false
			}
			if !sc.value() {
				return false
			}
		}
		switch {
		case field >= 0:
			sc.out.meta[field] = sc.data[vstart:sc.pos]
		case lv == levelTemplateMeta && bit != 0:
			sc.out.templateAnnotations = sc.data[vstart:sc.pos]
		}
		sc.skipSpace()
		if sc.pos >= len(sc.data) {
			return false
		}
		switch sc.data[sc.pos] {
		case ',':
			sc.pos++
			sc.skipSpace()
		case '}':
			sc.pos++
			sc.depth--
			return true
		default:
			return false
		}
	}
}

// route says what a key at level lv leads to: the level of its value, the metadata field it
// is (-1 for none), and its bit for finding duplicates (0 when the key is not on a path). ok
// is false when the key defeats the fast path.
func (sc *scanner) route(lv scanLevel, key []byte) (child scanLevel, field metaField, bit uint16, ok bool) {
	field = -1
	switch lv {
	case levelTop:
		// metadata is decoded into a struct (case-insensitive names), spec into a map.
		switch {
		case string(key) == "metadata":
			return levelMeta, field, 1, true
		case bytes.EqualFold(key, []byte("metadata")):
			return 0, field, 0, false
		case string(key) == "spec":
			return levelSpec, field, 2, true
		}
	case levelMeta:
		for i, name := range metaFieldNames {
			if string(key) == name {
				return levelOther, metaField(i), 1 << i, true
			}
			if bytes.EqualFold(key, []byte(name)) {
				return 0, field, 0, false
			}
		}
	case levelSpec:
		if string(key) == "template" {
			return levelTemplate, field, 1, true
		}
	case levelTemplate:
		if string(key) == "metadata" {
			return levelTemplateMeta, field, 1, true
		}
	case levelTemplateMeta:
		if string(key) == "annotations" {
			return levelOther, field, 1, true
		}
	}
	return levelOther, field, 0, true
}

func (sc *scanner) isNull() bool {
	return bytes.HasPrefix(sc.data[sc.pos:], []byte("null"))
}

// value skips one JSON value, checking it as encoding/json would.
func (sc *scanner) value() bool {
	end, ok := skipValue(sc.data, sc.pos, maxScanDepth-sc.depth)
	sc.pos = end
	return ok
}

// skipValue skips the JSON value at d[i:] without recursion, nested at most maxDepth deep,
// and returns where it ends. It accepts exactly what encoding/json accepts.
func skipValue(d []byte, i, maxDepth int) (int, bool) {
	var stack [maxScanDepth]byte
	depth := 0
	var ok bool
	for {
		// A value starts at i.
		i = skipWS(d, i)
		if i >= len(d) {
			return i, false
		}
		switch c := d[i]; {
		case c == '"':
			if i, _, ok = skipString(d, i); !ok {
				return i, false
			}
		case c == '{':
			i = skipWS(d, i+1)
			if i < len(d) && d[i] == '}' {
				i++
				break
			}
			if depth >= maxDepth {
				return i, false
			}
			stack[depth] = '{'
			depth++
			if i, ok = skipKey(d, i); !ok {
				return i, false
			}
			continue
		case c == '[':
			i = skipWS(d, i+1)
			if i < len(d) && d[i] == ']' {
				i++
				break
			}
			if depth >= maxDepth {
				return i, false
			}
			stack[depth] = '['
			depth++
			continue
		case c == 't':
			if !bytes.HasPrefix(d[i:], []byte("true")) {
				return i, false
			}
			i += 4
		case c == 'f':
			if !bytes.HasPrefix(d[i:], []byte("false")) {
				return i, false
			}
			i += 5
		case c == 'n':
			if !bytes.HasPrefix(d[i:], []byte("null")) {
				return i, false
			}
			i += 4
		case c == '-' || ('0' <= c && c <= '9'):
			if i, ok = skipNumber(d, i); !ok {
				return i, false
			}
		default:
			return i, false
		}
		// After a value: close containers until a comma leads to the next value.
		for {
			if depth == 0 {
				return i, true
			}
			i = skipWS(d, i)
			if i >= len(d) {
				return i, false
			}
			top := stack[depth-1]
			switch c := d[i]; {
			case c == ',':
				i++
				if top == '{' {
					if i, ok = skipKey(d, skipWS(d, i)); !ok {
						return i, false
					}
				}
			case c == '}' && top == '{', c == ']' && top == '[':
				i++
				depth--
				continue
			default:
				return i, false
			}
			break
		}
	}
}

// skipKey skips an object's key and the colon after it.
func skipKey(d []byte, i int) (int, bool) {
	if i >= len(d) || d[i] != '"' {
		return i, false
	}
	i, _, ok := skipString(d, i)
	if !ok {
		return i, false
	}
	i = skipWS(d, i)
	if i >= len(d) || d[i] != ':' {
		return i, false
	}
	return i + 1, true
}

func skipWS(d []byte, i int) int {
	for i < len(d) {
		switch d[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// skipNumber skips a number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func skipNumber(d []byte, i int) (int, bool) {
	if i < len(d) && d[i] == '-' {
		i++
	}
	switch {
	case i < len(d) && d[i] == '0':
		i++
	case i < len(d) && '1' <= d[i] && d[i] <= '9':
		for i < len(d) && '0' <= d[i] && d[i] <= '9' {
			i++
		}
	default:
		return i, false
	}
	if i < len(d) && d[i] == '.' {
		i++
		if i >= len(d) || d[i] < '0' || d[i] > '9' {
			return i, false
		}
		for i < len(d) && '0' <= d[i] && d[i] <= '9' {
			i++
		}
	}
	if i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		i++
		if i < len(d) && (d[i] == '+' || d[i] == '-') {
			i++
		}
		if i >= len(d) || d[i] < '0' || d[i] > '9' {
			return i, false
		}
		for i < len(d) && '0' <= d[i] && d[i] <= '9' {
			i++
		}
	}
	return i, true
}

// strStop marks the bytes that end the plain run of a string: the quote, the backslash and
// the control characters encoding/json rejects; bytes from 0x80 mark a string as not plain.
var strStop = func() (t [256]uint8) {
	for c := range 0x20 {
		t[c] = stopInvalid
	}
	t['"'] = stopQuote
	t['\\'] = stopEscape
	for c := 0x80; c < 0x100; c++ {
		t[c] = stopHigh
	}
	return t
}()

const (
	stopNone uint8 = iota
	stopInvalid
	stopQuote
	stopEscape
	stopHigh
)

// str skips a string at sc.pos (which is '"'). plain is true when it has neither escapes nor
// bytes outside ASCII, so its bytes are its value.
func (sc *scanner) str() (plain, ok bool) {
	sc.pos, plain, ok = skipString(sc.data, sc.pos)
	return plain, ok
}

// skipString skips the string at d[i] (which is '"') and returns where it ends; plain is true
// when it has neither escapes nor bytes outside ASCII.
func skipString(d []byte, i int) (end int, plain, ok bool) {
	i++
	plain = true
	for i < len(d) {
		// Eight bytes at a time while none of them ends the plain run.
		for i+8 <= len(d) && !stopsRun(binary.LittleEndian.Uint64(d[i:])) {
			i += 8
		}
		if i >= len(d) {
			break
		}
		switch strStop[d[i]] {
		case stopNone:
			i++
		case stopQuote:
			return i + 1, plain, true
		case stopHigh:
			plain = false
			i++
		case stopEscape:
			plain = false
			if i+1 >= len(d) {
				return i, false, false
			}
			switch d[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(d) {
					return i, false, false
				}
				for _, h := range d[i+2 : i+6] {
					if !isHex(h) {
						return i, false, false
					}
				}
				i += 6
			default:
				return i, false, false
			}
		default:
			return i, false, false
		}
	}
	return i, false, false
}

// stopsRun reports whether any of the eight bytes in x is a quote, a backslash, a control
// character or a byte from 0x80.
func stopsRun(x uint64) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	hasZero := func(v uint64) uint64 { return (v - ones) & ^v & highs }
	return (hasZero(x^(ones*'"')) | hasZero(x^(ones*'\\')) | ((x - ones*0x20) &^ x & highs) | (x & highs)) != 0
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// metaFromScan builds the object's metadata from a scan. ok is false when a field needs
// encoding/json's judgement after all (a type error, say); the caller then decodes the object
// with it.
func metaFromScan(s *objectScan) (*objectMeta, bool) {
	m := &objectMeta{}
	for i, dst := range []*string{&m.Name, &m.GenerateName, &m.Namespace, &m.UID} {
		if raw := s.meta[i]; raw != nil && !decodeString(raw, dst) {
			return nil, false
		}
	}
	var ok bool
	if m.Labels, ok = decodeStringMap(s.meta[metaLabels]); !ok {
		return nil, false
	}
	if m.Annotations, ok = decodeStringMap(s.meta[metaAnnotations]); !ok {
		return nil, false
	}
	if raw := s.meta[metaOwnerReferences]; raw != nil {
		if json.Unmarshal(raw, &m.OwnerReferences) != nil {
			return nil, false
		}
	}
	return m, true
}

// decodeString decodes a JSON value into a string field as encoding/json would.
func decodeString(raw []byte, dst *string) bool {
	if s, ok := plainString(raw); ok {
		*dst = s
		return true
	}
	return json.Unmarshal(raw, dst) == nil
}

// plainString returns the value of a string without escapes whose bytes are valid UTF-8.
func plainString(raw []byte) (string, bool) {
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return "", false
	}
	body := raw[1 : len(raw)-1]
	if bytes.IndexByte(body, '\\') >= 0 || !utf8.Valid(body) {
		return "", false
	}
	return string(body), true
}

// decodeStringMap decodes a JSON value into a map[string]string as encoding/json would. A
// missing value is a nil map.
func decodeStringMap(raw []byte) (map[string]string, bool) {
	if raw == nil {
		return nil, true
	}
	if m, ok := plainStringMap(raw); ok {
		return m, true
	}
	var m map[string]string
	if json.Unmarshal(raw, &m) != nil {
		return nil, false
	}
	return m, true
}

// plainStringMap decodes an object of plain strings, as the API server writes labels and
// annotations (no spaces, no escapes); anything else is left to encoding/json.
func plainStringMap(raw []byte) (map[string]string, bool) {
	if len(raw) < 2 || raw[0] != '{' {
		return nil, false
	}
	m := make(map[string]string, bytes.Count(raw, []byte(`":"`)))
	i := 1
	if raw[i] == '}' {
		return m, i+1 == len(raw)
	}
	for {
		k, n, ok := plainToken(raw[i:])
		if !ok || i+n >= len(raw) || raw[i+n] != ':' {
			return nil, false
		}
		i += n + 1
		v, n, ok := plainToken(raw[i:])
		if !ok || i+n >= len(raw) {
			return nil, false
		}
		m[k] = v
		i += n
		switch raw[i] {
		case ',':
			i++
		case '}':
			return m, i+1 == len(raw)
		default:
			return nil, false
		}
	}
}

// plainToken reads a string token without escapes, valid UTF-8, at the start of b; n is its
// length with the quotes.
func plainToken(b []byte) (s string, n int, ok bool) {
	if len(b) < 2 || b[0] != '"' {
		return "", 0, false
	}
	end := bytes.IndexByte(b[1:], '"')
	if end < 0 {
		return "", 0, false
	}
	body := b[1 : 1+end]
	if bytes.IndexByte(body, '\\') >= 0 || !utf8.Valid(body) {
		return "", 0, false
	}
	return string(body), end + 2, true
}

// restartedAt returns the pod template's restartedAt annotation from a scan, as
// unstructured.NestedString reads it from the decoded object: "" when it is absent or not a
// string.
func restartedAt(s *objectScan) string {
	raw := s.templateAnnotations
	if raw == nil || raw[0] != '{' {
		return ""
	}
	var ann map[string]any
	if json.Unmarshal(raw, &ann) != nil {
		return ""
	}
	at, _ := ann[AnnotationRestartedAt].(string)
	return at
}
