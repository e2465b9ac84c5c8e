package handlers

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"image/png"

	"github.com/pquerna/otp"
)

// qrSize is the QR image side in pixels: large enough for phone cameras at arm's length.
const qrSize = 256

// qrDataURL renders an otpauth URI as a PNG QR code data URL, which authenticator apps
// (and zbarimg) decode back to exactly the URI.
func qrDataURL(uri string) (string, error) {
	key, err := otp.NewKeyFromURL(uri)
	if err != nil {
		return "", fmt.Errorf("parse otpauth URI: %w", err)
	}
	img, err := key.Image(qrSize, qrSize)
	if err != nil {
		return "", fmt.Errorf("render QR code: %w", err)
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return "", fmt.Errorf("encode QR code: %w", err)
	}
	return "data:image/png;base64," + base64.StdEncoding.EncodeToString(buf.Bytes()), nil
}
