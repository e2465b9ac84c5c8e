package handlers

import (
	"bytes"
	"compress/zlib"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"sync"

	"rsc.io/qr/coding"
)

// qrTargetSize is roughly the image side in pixels: large enough for phone cameras at
// arm's length. Modules are whole pixels, so the real side is a multiple of the module
// count, plus the 4-module quiet zone ISO/IEC 18004 asks for on every side.
const qrTargetSize = 256

// qrLevel is the error correction of the codes: M, about 15 % of the code recoverable,
// enough for a screen photographed at an angle.
const qrLevel = coding.M

// qrQuiet is the quiet zone, in modules.
const qrQuiet = 4

// qrPlans caches a plan (the layout of function patterns, format and version bits) per
// QR version: building one cost more than the rest of an encoding, and every otpauth URI
// of a deployment has about the same length, so one or two plans serve every setup.
// A plan is only read by Encode.
var qrPlans sync.Map // coding.Version → *coding.Plan

// qrDataURL renders an otpauth URI as a PNG QR code data URL, which authenticator apps
// (and zbarimg) decode back to exactly the URI.
//
// rsc.io/qr's coding package lays out the code (mask 0, as its qr.Encode does; choosing
// a mask by penalty, as boombuler's encoder behind pquerna/otp's Key.Image does, took
// 5 ms a code). The PNG is written here: a 1-bit grayscale image whose scanlines are
// built once per module row and repeated, deflated with Huffman coding only, which
// cost a tenth of rsc.io/qr's pixel-by-pixel writer (BenchmarkQRDataURL).
func qrDataURL(uri string) (string, error) {
	enc := coding.String(uri)
	v := coding.Version(coding.MinVersion)
	for ; enc.Bits(v) > v.DataBytes(qrLevel)*8; v++ {
		if v == coding.MaxVersion {
			return "", errors.New("encode QR code: text too long")
		}
	}
	plan, ok := qrPlans.Load(v)
	if !ok {
		p, err := coding.NewPlan(v, qrLevel, 0)
		if err != nil {
			return "", fmt.Errorf("encode QR code: %w", err)
		}
		plan, _ = qrPlans.LoadOrStore(v, p)
	}
	code, err := plan.(*coding.Plan).Encode(enc)
	if err != nil {
		return "", fmt.Errorf("encode QR code: %w", err)
	}
	img, err := qrPNG(code, max(1, qrTargetSize/(code.Size+2*qrQuiet)))
	if err != nil {
		return "", err
	}
	return "data:image/png;base64," + base64.StdEncoding.EncodeToString(img), nil
}

// qrZlib reuses deflate writers: each holds tables worth keeping.
var qrZlib = sync.Pool{New: func() any {
	w, _ := zlib.NewWriterLevel(nil, zlib.HuffmanOnly) // a valid level never fails
	return w
}}

// qrPNG draws code with scale pixels per module: 1-bit grayscale, black modules 0.
func qrPNG(code *coding.Code, scale int) ([]byte, error) {
	modules := code.Size + 2*qrQuiet
	side := modules * scale
	rowBytes := 1 + (side+7)/8 // filter byte (none) and the pixels
	var out bytes.Buffer
	out.Grow(64 + rowBytes*modules)
	out.WriteString("\x89PNG\r\n\x1a\n")
	var ihdr [13]byte
	binary.BigEndian.PutUint32(ihdr[0:], uint32(side))
	binary.BigEndian.PutUint32(ihdr[4:], uint32(side))
	ihdr[8] = 1 // bit depth; color type 0 (gray), deflate, no filter, no interlace
	pngChunk(&out, "IHDR", ihdr[:])

	var idat bytes.Buffer
	zw := qrZlib.Get().(*zlib.Writer)
	defer qrZlib.Put(zw)
	zw.Reset(&idat)
	row := make([]byte, rowBytes)
	for y := range modules {
		// All white, then the row's black modules cleared bit by bit.
		for i := 1; i < len(row); i++ {
			row[i] = 0xff
		}
		if my := y - qrQuiet; my >= 0 && my < code.Size {
			for mx := range code.Size {
				if !code.Black(mx, my) {
					continue
				}
				for px := (mx + qrQuiet) * scale; px < (mx+qrQuiet+1)*scale; px++ {
					row[1+px/8] &^= 0x80 >> (px % 8)
				}
			}
		}
		for range scale {
			if _, err := zw.Write(row); err != nil {
				return nil, fmt.Errorf("encode QR image: %w", err)
			}
		}
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("encode QR image: %w", err)
	}
	pngChunk(&out, "IDAT", idat.Bytes())
	pngChunk(&out, "IEND", nil)
	return out.Bytes(), nil
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
