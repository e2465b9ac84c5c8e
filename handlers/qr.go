package handlers

import (
	"encoding/base64"
	"errors"
	"fmt"
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
// 5 ms a code). The PNG is written by qrPNG.
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
	img := qrPNG(code, max(1, qrTargetSize/(code.Size+2*qrQuiet)), qrQuiet)
	return "data:image/png;base64," + base64.StdEncoding.EncodeToString(img), nil
}
