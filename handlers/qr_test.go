package handlers

import (
	"bytes"
	"compress/flate"
	"encoding/base64"
	"image/png"
	"io"
	"slices"
	"strings"
	"testing"

	"rsc.io/qr/coding"
)

const sampleURI = "otpauth://totp/mfad:alice?secret=3J4LEHIRH3SODOWE4WYEJI6W5IY5IFVQ&issuer=mfad&algorithm=SHA1&digits=6&period=30"

func TestQRDataURLIsAPNGOfUsefulSize(t *testing.T) {
	url, err := qrDataURL(sampleURI)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(url, "data:image/png;base64,"))
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	if b := img.Bounds(); b.Dx() != b.Dy() || b.Dx() < 200 || b.Dx() > 300 {
		t.Fatalf("QR image is %v", b)
	}
	// The corner is quiet zone: white.
	if r, g, bl, _ := img.At(0, 0).RGBA(); r != 0xffff || g != 0xffff || bl != 0xffff {
		t.Fatal("no quiet zone")
	}
}

// BenchmarkQRDataURL is the cost a TOTP setup pays on the API node for its picture.
func BenchmarkQRDataURL(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := qrDataURL(sampleURI); err != nil {
			b.Fatal(err)
		}
	}
}

// TestQRPNGPixels: every pixel of the image is the module it belongs to (quiet zone
// white), for several scales, so the hand-made deflate stream is decoded by a standard
// PNG decoder to exactly the code.
func TestQRPNGPixels(t *testing.T) {
	code := encodeQR(t, sampleURI)
	for _, scale := range []int{1, 2, 5, 9, 40} { // 40: 266-byte rows, two back-references each
		checkQRPixels(t, code, scale)
	}
}

// FuzzQRPNG draws the code of any text at a scale up to 48, or up to what keeps the
// image under 1,024 pixels a side, and checks every pixel: codes of every version (21
// to 177 modules a side) and row lengths on and off byte boundaries. Rows longer than
// one back-reference are TestMatchBitsCopies'.
func FuzzQRPNG(f *testing.F) {
	f.Add(sampleURI, uint8(4))
	f.Add("a", uint8(0))
	f.Add(strings.Repeat("otpauth://totp/x?secret=ABC", 30), uint8(11))
	f.Fuzz(func(t *testing.T, text string, scale uint8) {
		if len(text) > 1200 {
			t.Skip("beyond what a version 40-M code holds in byte mode")
		}
		code := encodeQR(t, text)
		most := min(48, 1024/(code.Size+2*qrQuiet))
		checkQRPixels(t, code, 1+int(scale)%most)
	})
}

// encodeQR lays out text as qrDataURL does.
func encodeQR(t *testing.T, text string) *coding.Code {
	t.Helper()
	enc := coding.String(text)
	v := coding.Version(coding.MinVersion)
	for ; enc.Bits(v) > v.DataBytes(qrLevel)*8; v++ {
		if v == coding.MaxVersion {
			t.Skip("too long for a QR code")
		}
	}
	plan, err := coding.NewPlan(v, qrLevel, 0)
	if err != nil {
		t.Fatal(err)
	}
	code, err := plan.Encode(enc)
	if err != nil {
		t.Fatal(err)
	}
	return code
}

// checkQRPixels decodes qrPNG's image with image/png and compares every pixel with the
// module it belongs to.
func checkQRPixels(t *testing.T, code *coding.Code, scale int) {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(qrPNG(code, scale, qrQuiet)))
	if err != nil {
		t.Fatalf("scale %d: %v", scale, err)
	}
	side := (code.Size + 2*qrQuiet) * scale
	if b := img.Bounds(); b.Dx() != side || b.Dy() != side {
		t.Fatalf("scale %d: %v, want %d pixels square", scale, b, side)
	}
	for y := range side {
		for x := range side {
			mx, my := x/scale-qrQuiet, y/scale-qrQuiet
			black := mx >= 0 && my >= 0 && mx < code.Size && my < code.Size && code.Black(mx, my)
			r, _, _, _ := img.At(x, y).RGBA()
			if (r == 0) != black {
				t.Fatalf("scale %d: pixel %d,%d is %v, module %d,%d black=%v", scale, x, y, r, mx, my, black)
			}
		}
	}
}

// TestMatchBitsCopies inflates, with compress/flate, a block of literals followed by the
// back-reference of matchBits, for lengths around the 258-byte limit of one match and
// the splits that keep the rest at least 3 bytes long, and distances up to 32,768.
func TestMatchBitsCopies(t *testing.T) {
	for _, tc := range []struct{ length, distance int }{
		{3, 1}, {4, 4}, {258, 258}, {259, 259}, {260, 260}, {261, 30}, {266, 266},
		{516, 516}, {517, 517}, {518, 518}, {519, 100}, {520, 520}, {1000, 7}, {4097, 4097}, {600, 32768},
	} {
		src := make([]byte, tc.distance)
		for i := range src {
			src[i] = byte(i*7 + i/251)
		}
		var z deflater
		z.bits(1, 1) // BFINAL
		z.bits(1, 2) // fixed Huffman codes
		for _, b := range src {
			z.literal(b)
		}
		z.emit(matchBits(tc.length, tc.distance))
		z.symbol(256)
		z.flush()
		got, err := io.ReadAll(flate.NewReader(bytes.NewReader(z.buf)))
		if err != nil {
			t.Fatalf("%+v: %v", tc, err)
		}
		want := slices.Clone(src)
		for range tc.length {
			want = append(want, want[len(want)-tc.distance])
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("%+v: inflated %d bytes, want %d (equal prefix %d)", tc, len(got), len(want), commonPrefix(got, want))
		}
	}
	for _, bad := range []struct{ length, distance int }{{2, 1}, {3, 0}, {3, 32769}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%+v: no panic", bad)
				}
			}()
			matchBits(bad.length, bad.distance)
		}()
	}
}

func commonPrefix(a, b []byte) int {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	return n
}
