package webhook

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"math/bits"
	"strings"
	"unicode/utf8"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The guard's fast path through an object's JSON. Most decisions in protected scope read a few
// metadata fields (labels, annotations, owner references) and, for updates of workloads, the
// pod template's restartedAt annotation; decoding the whole object with encoding/json for that
// scanned a 5 KiB Deployment twice and allocated for every field of it.
//
// The objects come from the review decoder (ReviewHandler), which has already checked the
// whole review, objects included, as JSON: well formed, valid UTF-8, no name twice in any
// object. scanObject relies on that and does not check the document a second time: it follows
// the paths to the values the guard reads, reads those exactly, finds the end of everything
// else by its quotes and brackets alone, and stops once it has all it needs (metadata, and the
// pod template's annotations when asked for them). It gives up (ok false), and the caller
// decodes the object with encoding/json, whenever its reading could differ from encoding/json's
// on such a document: the top level is not an object, a key on a path it follows has escapes
// or non-ASCII bytes, a key matches a metadata field only case-insensitively (encoding/json
// would match it), a key on a path appears twice, the nesting on a path is deep, or the
// document ends early. FuzzScanAgreesWithDecode checks the agreement on every document the
// review decoder accepts, and that no input makes the scanner fail otherwise.

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

// maxScanDepth is the nesting of the paths the scanner follows.
const maxScanDepth = 8

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
	// out is filled here and copied out at the end: a pointer to the caller's would move the
	// caller's facts to the heap.
	out objectScan
	// wantTemplate is set when spec.template.metadata.annotations is read.
	wantTemplate bool
	// gotMeta and gotTemplate are set once metadata, and the place of the pod template's
	// annotations, have been read or found absent: then the scan is done.
	gotMeta, gotTemplate bool
}

// scanObject scans raw, an object's JSON, into out for its metadata and, when wantTemplate is
// set, for spec.template.metadata.annotations. It reports false when the fast path does not
// apply and the object must be decoded with encoding/json.
func scanObject(raw []byte, wantTemplate bool, out *objectScan) bool {
	sc := scanner{data: raw, wantTemplate: wantTemplate, gotTemplate: !wantTemplate}
	ok := sc.scan()
	*out = sc.out
	return ok
}

func (sc *scanner) scan() bool {
	sc.skipSpace()
	if sc.pos >= len(sc.data) || sc.data[sc.pos] != '{' {
		return false
	}
	if !sc.object(levelTop) {
		return false
	}
	if sc.done() {
		return true
	}
	sc.skipSpace()
	return sc.pos == len(sc.data)
}

// done reports whether the scan has read everything it was asked for.
func (sc *scanner) done() bool { return sc.gotMeta && sc.gotTemplate }

func (sc *scanner) skipSpace() {
	if sc.pos < len(sc.data) && sc.data[sc.pos] > ' ' {
		// The API server writes JSON without spaces.
		return
	}
	sc.pos = skipWS(sc.data, sc.pos)
}

// object scans an object at sc.pos (which is '{') at level lv, or the part of it before the
// scan is done.
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
		if !ok || !plain {
			// An escaped or non-ASCII key may decode to a name the path follows.
			return false
		}
		key := sc.data[start+1 : sc.pos-1]
		sc.skipSpace()
		if sc.pos >= len(sc.data) || sc.data[sc.pos] != ':' {
			return false
		}
		sc.pos++
		sc.skipSpace()
		child, field, bit, ok := sc.route(lv, key)
		if !ok {
			return false
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
			if child == levelMeta && !sc.isNull() {
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
		switch child {
		case levelMeta:
			sc.gotMeta = true
		case levelSpec, levelTemplate, levelTemplateMeta:
			// The pod template's annotations are read, or there are none.
			sc.gotTemplate = true
		}
		if sc.done() {
			return true
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
		case string(key) == "spec" && sc.wantTemplate:
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

// value skips one JSON value.
func (sc *scanner) value() bool {
	end, ok := skipValue(sc.data, sc.pos)
	sc.pos = end
	return ok
}

// skipValue returns where the JSON value at d[i:] ends, found by its quotes and brackets alone:
// the value has been checked as JSON before. ok is false when d ends first.
func skipValue(d []byte, i int) (int, bool) {
	if i >= len(d) {
		return i, false
	}
	switch d[i] {
	case '"':
		return skipTrustedString(d, i)
	case '{', '[':
		return skipContainer(d, i)
	}
	// A number, true, false or null ends where a delimiter starts.
	for i < len(d) {
		switch d[i] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			return i, true
		}
		i++
	}
	return i, true
}

// Eight copies of a byte, and the high bit of each of eight bytes.
const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// zeroBytes marks with its high bit the first byte of x that is zero (and possibly later
// bytes, which callers do not use).
func zeroBytes(x uint64) uint64 { return (x - ones) & ^x & highs }

// bytesEqual returns a bitmap of the bytes of x (bit k for byte k) that are c.
func bytesEqual(x uint64, c byte) uint64 {
	t := x ^ (ones * uint64(c))
	// A byte's high bit, after this, is set exactly when the byte is not zero: no carry
	// crosses bytes.
	nonzero := ((t &^ highs) + ^uint64(highs)) | t
	zero := ^nonzero & highs
	// Gather the eight high bits into the low byte.
	return (zero >> 7) * 0x0102040810204080 >> 56
}

// blockBitmaps returns, for 64 bytes, bitmaps (bit k for byte k) of the quotes, opening and
// closing brackets, and backslashes.
func blockBitmaps(b *[64]byte) (quotes, opens, closes, backslashes uint64) {
	var anyBackslash uint64
	for w := range 8 {
		x := binary.LittleEndian.Uint64(b[w*8:])
		// Brackets are '[' and '{', ']' and '}' with bit 0x20 set.
		y := x | ones*0x20
		quotes |= bytesEqual(x, '"') << (w * 8)
		opens |= bytesEqual(y, '{') << (w * 8)
		closes |= bytesEqual(y, '}') << (w * 8)
		anyBackslash |= zeroBytes(x ^ (ones * '\\'))
	}
	if anyBackslash != 0 {
		// Rare outside managedFields' keys: mapped only when there is one.
		for w := range 8 {
			backslashes |= bytesEqual(binary.LittleEndian.Uint64(b[w*8:]), '\\') << (w * 8)
		}
	}
	return quotes, opens, closes, backslashes
}

// escapedBits returns the bits of a block's bytes that an unescaped backslash escapes, given
// the block's backslashes and whether its first byte is escaped by the block before; carry
// says whether the next block's first byte is escaped.
func escapedBits(backslashes uint64, escapedFirst bool) (escaped uint64, carry bool) {
	if escapedFirst {
		escaped, backslashes = 1, backslashes&^1
	}
	for backslashes != 0 {
		k := bits.TrailingZeros64(backslashes)
		if k == 63 {
			return escaped, true
		}
		escaped |= 1 << (k + 1)
		// The escaped byte, a backslash or not, escapes nothing.
		backslashes &^= 3 << k
	}
	return escaped, false
}

// prefixXor returns x with each bit set to the parity of the bits of x at and below it: the
// bytes from an opening quote up to (not including) its closing quote.
func prefixXor(x uint64) uint64 {
	x ^= x << 1
	x ^= x << 2
	x ^= x << 4
	x ^= x << 8
	x ^= x << 16
	x ^= x << 32
	return x
}

// skipContainer returns where the object or array at d[i] ('{' or '[') ends. It reads 64
// bytes at a time into bitmaps of quotes and brackets, masks the brackets inside strings, and
// walks a block bracket by bracket only when the container could end in it.
func skipContainer(d []byte, i int) (int, bool) {
	var (
		depth        int
		inString     uint64 // all ones while a string continues into the next block
		escapedFirst bool
		tail         [64]byte
	)
	for start := i; start < len(d); start += 64 {
		block := (*[64]byte)(nil)
		if start+64 <= len(d) {
			block = (*[64]byte)(d[start : start+64])
		} else {
			// The last bytes, padded with zeros, which are neither quotes nor brackets.
			tail = [64]byte{}
			copy(tail[:], d[start:])
			block = &tail
		}
		quotes, opens, closes, backslashes := blockBitmaps(block)
		if backslashes != 0 || escapedFirst {
			var escaped uint64
			escaped, escapedFirst = escapedBits(backslashes, escapedFirst)
			quotes &^= escaped
		}
		strs := prefixXor(quotes) ^ inString
		inString = uint64(int64(strs) >> 63)
		opens &^= strs
		closes &^= strs
		if n := bits.OnesCount64(closes); depth > n {
			// The container cannot end in this block.
			depth += bits.OnesCount64(opens) - n
			continue
		}
		for brackets := opens | closes; brackets != 0; brackets &= brackets - 1 {
			bit := brackets & -brackets
			if opens&bit != 0 {
				depth++
				continue
			}
			depth--
			if depth == 0 {
				return start + bits.TrailingZeros64(bit) + 1, true
			}
		}
	}
	return len(d), false
}

// skipTrustedString returns where the string at d[i] (which is '"') ends.
func skipTrustedString(d []byte, i int) (int, bool) {
	i++
	for i < len(d) {
		if i+8 <= len(d) {
			x := binary.LittleEndian.Uint64(d[i:])
			m := zeroBytes(x^(ones*'"')) | zeroBytes(x^(ones*'\\'))
			if m == 0 {
				i += 8
				continue
			}
			i += bits.TrailingZeros64(m) / 8
		}
		switch d[i] {
		case '"':
			return i + 1, true
		case '\\':
			// The escaped byte is never the string's end; \uXXXX's digits are neither quotes
			// nor backslashes.
			i += 2
		default:
			i++
		}
	}
	return i, false
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

// str skips a string at sc.pos (which is '"'). plain is true when it has neither escapes nor
// bytes outside ASCII, so its bytes are its value.
func (sc *scanner) str() (plain, ok bool) {
	start := sc.pos
	if sc.pos, ok = skipTrustedString(sc.data, sc.pos); !ok {
		return false, false
	}
	for _, c := range sc.data[start+1 : sc.pos-1] {
		if c == '\\' || c >= utf8.RuneSelf {
			return false, true
		}
	}
	return true, true
}

// metaFromScan decodes the object's metadata from a scan into m (a field's value is never
// empty when it is there). It reports false when a
// field needs encoding/json's judgement after all (a type error, say); the caller then decodes
// the object with it.
func metaFromScan(s *objectScan, m *objectMeta) bool {
	*m = objectMeta{}
	// The strings of the metadata are cut from one copy of the values they are in: one
	// allocation for all of them.
	n := 0
	for _, raw := range s.meta[:metaOwnerReferences] {
		n += len(raw)
	}
	var b strings.Builder
	b.Grow(n)
	for _, raw := range s.meta[:metaOwnerReferences] {
		b.Write(raw)
	}
	all, off := b.String(), 0
	value := func(f metaField) string {
		v := all[off : off+len(s.meta[f])]
		off += len(v)
		return v
	}
	for i, dst := range [...]*string{&m.Name, &m.GenerateName, &m.Namespace, &m.UID} {
		if v := value(metaField(i)); v != "" && !decodeString(v, dst) {
			return false
		}
	}
	var ok bool
	if m.Labels, ok = decodeStringMap(value(metaLabels)); !ok {
		return false
	}
	if m.Annotations, ok = decodeStringMap(value(metaAnnotations)); !ok {
		return false
	}
	if raw := s.meta[metaOwnerReferences]; raw != nil {
		// Decoded into a variable of its own, so that m is not handed to encoding/json (which
		// would move every caller's m to the heap).
		var refs []metav1.OwnerReference
		if json.Unmarshal(raw, &refs) != nil {
			return false
		}
		m.OwnerReferences = refs
	}
	return true
}

// decodeString decodes a JSON value, v, into a string field as encoding/json would; a plain
// string is cut from v.
func decodeString(v string, dst *string) bool {
	if s, n, ok := plainToken(v); ok && n == len(v) {
		*dst = s
		return true
	}
	var s string
	if json.Unmarshal([]byte(v), &s) != nil {
		return false
	}
	*dst = s
	return true
}

// decodeStringMap decodes a JSON value, v, into a map[string]string as encoding/json would;
// plain keys and values are cut from v. A missing value ("") is a nil map.
func decodeStringMap(v string) (map[string]string, bool) {
	if v == "" {
		return nil, true
	}
	if m, ok := plainStringMap(v); ok {
		return m, true
	}
	var m map[string]string
	if json.Unmarshal([]byte(v), &m) != nil {
		return nil, false
	}
	return m, true
}

// plainStringMap decodes an object of plain strings, as the API server writes labels and
// annotations (no spaces, no escapes); anything else is left to encoding/json.
func plainStringMap(v string) (map[string]string, bool) {
	if len(v) < 2 || v[0] != '{' {
		return nil, false
	}
	m := make(map[string]string, strings.Count(v, `":"`))
	i := 1
	if v[i] == '}' {
		return m, i+1 == len(v)
	}
	for {
		k, n, ok := plainToken(v[i:])
		if !ok || i+n >= len(v) || v[i+n] != ':' {
			return nil, false
		}
		i += n + 1
		val, n, ok := plainToken(v[i:])
		if !ok || i+n >= len(v) {
			return nil, false
		}
		m[k] = val
		i += n
		switch v[i] {
		case ',':
			i++
		case '}':
			return m, i+1 == len(v)
		default:
			return nil, false
		}
	}
}

// plainToken reads a string token without escapes, valid UTF-8, at the start of v; n is its
// length with the quotes.
func plainToken(v string) (s string, n int, ok bool) {
	if len(v) < 2 || v[0] != '"' {
		return "", 0, false
	}
	end := strings.IndexByte(v[1:], '"')
	if end < 0 {
		return "", 0, false
	}
	body := v[1 : 1+end]
	if strings.IndexByte(body, '\\') >= 0 || !utf8.ValidString(body) {
		return "", 0, false
	}
	return body, end + 2, true
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
