package handlers

import (
	"bytes"
	"encoding/base64"
	"image/png"
	"strings"
	"testing"
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
