package handlers

import (
	"bytes"
	"encoding/binary"
	"hash/adler32"
	"hash/crc32"

	"rsc.io/qr/coding"
)

// qrPNG draws code with scale pixels per module and quiet modules of white around it:
// a 1-bit grayscale PNG, black modules 0.
//
// The image data is deflated by hand (RFC 1951, one block with the fixed Huffman
// codes): each scanline repeats the one above it scale-1 times out of scale, and a
// repeated scanline is one back-reference. A QR code of 245×245 pixels then deflates
// to about 1.5 KB in a few microseconds, where a general compressor took tens of them
// (BenchmarkQRDataURL) and an uncompressed image would be 8 KB.
func qrPNG(code *coding.Code, scale, quiet int) []byte {
	modules := code.Size + 2*quiet
	side := modules * scale
	rowBytes := 1 + (side+7)/8 // filter byte (none) and the pixels

	var out bytes.Buffer
	out.Grow(2048)
	out.WriteString("\x89PNG\r\n\x1a\n")
	var ihdr [13]byte
	binary.BigEndian.PutUint32(ihdr[0:], uint32(side))
	binary.BigEndian.PutUint32(ihdr[4:], uint32(side))
	ihdr[8] = 1 // bit depth; color type 0 (gray), deflate, no filter, no interlace
	pngChunk(&out, "IHDR", ihdr[:])

	var z deflater
	z.buf = make([]byte, 0, 2048)
	z.buf = append(z.buf, 0x78, 0x01) // zlib: deflate, 32K window, no dictionary
	z.bits(1, 1)                      // BFINAL: the only block
	z.bits(1, 2)                      // BTYPE 01: fixed Huffman codes
	sum := adler32.New()
	row, prev := make([]byte, rowBytes), make([]byte, rowBytes)
	first := true
	for y := range modules {
		clear(row)
		for i := 1; i < len(row); i++ {
			row[i] = 0xff
		}
		if my := y - quiet; my >= 0 && my < code.Size {
			for mx := range code.Size {
				if !code.Black(mx, my) {
					continue
				}
				for px := (mx + quiet) * scale; px < (mx+quiet+1)*scale; px++ {
					row[1+px/8] &^= 0x80 >> (px % 8)
				}
			}
		}
		copies := scale
		if first || !bytes.Equal(row, prev) {
			for _, b := range row {
				z.literal(b)
			}
			copies--
			first = false
		}
		for range copies {
			z.repeat(rowBytes, rowBytes) // the scanline above, again
		}
		for range scale {
			sum.Write(row)
		}
		row, prev = prev, row
	}
	z.symbol(256) // end of block
	z.flush()
	z.buf = binary.BigEndian.AppendUint32(z.buf, sum.Sum32())
	pngChunk(&out, "IDAT", z.buf)
	pngChunk(&out, "IEND", nil)
	return out.Bytes()
}

// deflater writes deflate symbols with the fixed Huffman codes (RFC 1951 §3.2.6).
type deflater struct {
	buf  []byte
	acc  uint64 // bits not yet written, least significant first
	nacc uint
}

// bits appends the n low bits of v, least significant first.
func (z *deflater) bits(v uint64, n uint) {
	z.acc |= v << z.nacc
	z.nacc += n
	for z.nacc >= 8 {
		z.buf = append(z.buf, byte(z.acc))
		z.acc >>= 8
		z.nacc -= 8
	}
}

// fixedCodes are the fixed Huffman codes of the literal/length symbols 0–287, bit
// reversed (Huffman codes are sent most significant bit first into a stream written
// least significant bit first), and their lengths.
var fixedCodes, fixedLens = func() (codes [288]uint64, lens [288]uint) {
	for s := range 288 {
		var c uint64
		var n uint
		switch {
		case s < 144:
			c, n = uint64(0x30+s), 8
		case s < 256:
			c, n = uint64(0x190+s-144), 9
		case s < 280:
			c, n = uint64(s-256), 7
		default:
			c, n = uint64(0xc0+s-280), 8
		}
		codes[s], lens[s] = reverse(c, n), n
	}
	return
}()

// reverse is the n low bits of c in reverse order.
func reverse(c uint64, n uint) uint64 {
	var r uint64
	for i := range n {
		r |= (c >> i & 1) << (n - 1 - i)
	}
	return r
}

// symbol appends a literal/length symbol (0–285) with its fixed code.
func (z *deflater) symbol(s int) { z.bits(fixedCodes[s], fixedLens[s]) }

func (z *deflater) literal(b byte) { z.symbol(int(b)) }

// Lengths 3–258 and distances 1–32768: the base of each code and its extra bits.
var (
	lengthBase  = [...]int{3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258}
	lengthExtra = [...]uint{0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0}
	distBase    = [...]int{1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577}
	distExtra   = [...]uint{0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13}
)

// repeat appends a back-reference: copy length bytes from distance bytes back. Longer
// than 258 bytes is several references.
func (z *deflater) repeat(length, distance int) {
	for length > 0 {
		n := min(length, 258)
		if length-n > 0 && length-n < 3 {
			n = length - 3 // keep the rest a valid length
		}
		z.match(n, distance)
		length -= n
	}
}

func (z *deflater) match(length, distance int) {
	i := len(lengthBase) - 1
	for lengthBase[i] > length {
		i--
	}
	z.symbol(257 + i)
	z.bits(uint64(length-lengthBase[i]), lengthExtra[i])
	d := len(distBase) - 1
	for distBase[d] > distance {
		d--
	}
	z.bits(reverse(uint64(d), 5), 5) // distance codes: 5 bits, fixed
	z.bits(uint64(distance-distBase[d]), distExtra[d])
}

// flush writes the last partial byte.
func (z *deflater) flush() {
	if z.nacc > 0 {
		z.buf = append(z.buf, byte(z.acc))
		z.acc, z.nacc = 0, 0
	}
}

func pngChunk(out *bytes.Buffer, name string, data []byte) {
	var n [4]byte
	binary.BigEndian.PutUint32(n[:], uint32(len(data)))
	out.Write(n[:])
	crc := crc32.NewIEEE()
	crc.Write([]byte(name))
	crc.Write(data)
	out.WriteString(name)
	out.Write(data)
	binary.BigEndian.PutUint32(n[:], crc.Sum32())
	out.Write(n[:])
}
