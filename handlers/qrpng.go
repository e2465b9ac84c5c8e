package handlers

import (
	"bytes"
	"encoding/binary"
	"fmt"
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
	again := matchBits(rowBytes, rowBytes) // the scanline above, again
	first := true
	for y := range modules {
		pixels := row[1:] // row[0], the filter byte, stays 0: none
		for i := range pixels {
			pixels[i] = 0xff
		}
		if my := y - quiet; my >= 0 && my < code.Size {
			// A run of black modules is one span: clearing pixel by pixel was most of
			// qrPNG's time.
			for mx := 0; mx < code.Size; {
				if !code.Black(mx, my) {
					mx++
					continue
				}
				end := mx + 1
				for end < code.Size && code.Black(end, my) {
					end++
				}
				blacken(pixels, (mx+quiet)*scale, (end+quiet)*scale)
				mx = end
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
			z.emit(again)
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

// blacken clears the pixels from..to-1 of a 1-bit row, most significant bit first: the
// bytes wholly inside at once, the partial bytes at either end by mask.
func blacken(pixels []byte, from, to int) {
	for ; from < to && from%8 != 0; from++ {
		pixels[from/8] &^= 0x80 >> (from % 8)
	}
	for ; to-from >= 8; from += 8 {
		pixels[from/8] = 0
	}
	for ; from < to; from++ {
		pixels[from/8] &^= 0x80 >> (from % 8)
	}
}

// deflater writes deflate symbols with the fixed Huffman codes (RFC 1951 §3.2.6).
type deflater struct {
	buf  []byte
	acc  uint64 // bits not yet written, least significant first
	nacc uint
}

// bits appends the n ≤ 32 low bits of v, least significant first. The accumulator
// holds fewer than 32 bits between calls and goes out four bytes at a time.
func (z *deflater) bits(v uint64, n uint) {
	z.acc |= v << z.nacc
	z.nacc += n
	if z.nacc >= 32 {
		z.buf = binary.LittleEndian.AppendUint32(z.buf, uint32(z.acc))
		z.acc >>= 32
		z.nacc -= 32
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

// bitRun is n ≤ 32 bits to append, least significant first, as for bits; bitString
// is several.
type (
	bitRun struct {
		v uint64
		n uint
	}
	bitString []bitRun
)

// emit appends s, a back-reference worked out by matchBits.
func (z *deflater) emit(s bitString) {
	for _, b := range s {
		z.bits(b.v, b.n)
	}
}

// matchBits is the back-reference that copies length ≥ 3 bytes from distance (1–32768)
// bytes back: one match per 258 bytes at most. A scanline repeats with the same
// reference, so it is worked out once an image. (A QR scanline is at least 4 bytes, 21
// modules and the quiet zone at one pixel each; 32,768 bytes would be a scale of over
// a thousand.)
func matchBits(length, distance int) bitString {
	if length < 3 || distance < 1 || distance > 32768 {
		panic(fmt.Sprintf("qrPNG: a back-reference of %d bytes from %d back is out of deflate's reach", length, distance))
	}
	var s bitString
	for length > 0 {
		n := min(length, 258)
		if length-n > 0 && length-n < 3 {
			n = length - 3 // keep the rest a valid length
		}
		s = append(s, match(n, distance))
		length -= n
	}
	return s
}

// match is one back-reference of length 3–258 as bits: the length's symbol and extra
// bits, then the distance's fixed 5-bit code and extra bits (31 bits at most).
func match(length, distance int) (b bitRun) {
	add := func(v uint64, n uint) {
		b.v |= v << b.n
		b.n += n
	}
	i := len(lengthBase) - 1
	for lengthBase[i] > length {
		i--
	}
	add(fixedCodes[257+i], fixedLens[257+i])
	add(uint64(length-lengthBase[i]), lengthExtra[i])
	d := len(distBase) - 1
	for distBase[d] > distance {
		d--
	}
	add(reverse(uint64(d), 5), 5) // distance codes: 5 bits, fixed
	add(uint64(distance-distBase[d]), distExtra[d])
	return b
}

// flush writes the bits left, the last byte padded with zeros.
func (z *deflater) flush() {
	for z.nacc > 0 {
		z.buf = append(z.buf, byte(z.acc))
		z.acc >>= 8
		z.nacc -= min(z.nacc, 8)
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
