package handlers

import (
	"bytes"
	"encoding/base64"
	"image/png"
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
	enc := coding.String(sampleURI)
	v := coding.Version(coding.MinVersion)
	for ; enc.Bits(v) > v.DataBytes(qrLevel)*8; v++ {
	}
	plan, err := coding.NewPlan(v, qrLevel, 0)
	if err != nil {
		t.Fatal(err)
	}
	code, err := plan.Encode(enc)
	if err != nil {
		t.Fatal(err)
	}
	for _, scale := range []int{1, 2, 5, 9, 40} { // 40: rows longer than one 258-byte match
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
}
