package handlers

import (
	"github.com/labstack/echo/v4"

	mfa "github.com/mfad/mfad"
)

// Request decoders of the device and banking dialects: body bytes in, command
// parameters or an outcome naming the field out. They are pure, so the fuzz targets
// exercise exactly what the handlers run.

// parseBody reads the request body (at most MaxBody) and decodes it with parse.
func parseBody[T any](c echo.Context, parse func([]byte) (T, error)) (T, error) {
	body, err := readBody(c)
	if err != nil {
		var zero T
		return zero, err
	}
	return parse(body)
}

// parseTOTPSetup: {"device_name"} (1–64 characters).
func parseTOTPSetup(body []byte) (mfa.TOTPSetupParams, error) {
	var req struct {
		DeviceName *string `json:"device_name"`
	}
	if err := decodeJSON(body, &req); err != nil {
		return mfa.TOTPSetupParams{}, err
	}
	name, err := checkLabel("device_name", req.DeviceName, 64)
	return mfa.TOTPSetupParams{DeviceName: name}, err
}

// parseTOTPVerify: {"code","device_id"?}.
func parseTOTPVerify(body []byte) (mfa.TOTPVerifyParams, error) {
	var req struct {
		Code     *string `json:"code"`
		DeviceID *int64  `json:"device_id"`
	}
	if err := decodeJSON(body, &req); err != nil {
		return mfa.TOTPVerifyParams{}, err
	}
	code := deref(req.Code)
	return mfa.TOTPVerifyParams{Code: code, DeviceID: req.DeviceID}, checkOTP("code", code)
}

// otpSendRequest is POST /api/v1/mfa/otp/send.
type otpSendRequest struct {
	mfa.OTPSendParams
	UserID *string
}

// parseOTPSend: {"method":"sms"|"email","user_id"?}.
func parseOTPSend(body []byte) (otpSendRequest, error) {
	var req struct {
		Method *string `json:"method"`
		UserID *string `json:"user_id"`
	}
	if err := decodeJSON(body, &req); err != nil {
		return otpSendRequest{}, err
	}
	kind, err := channelKind("method", req.Method)
	return otpSendRequest{OTPSendParams: mfa.OTPSendParams{Method: kind}, UserID: req.UserID}, err
}

// verifyRequest is POST /api/v1/mfa/verify.
type verifyRequest struct {
	mfa.VerifyParams
	UserID *string
}

// parseVerify: {"code"} or {"backup_code"}, "user_id"?.
func parseVerify(body []byte) (verifyRequest, error) {
	var req struct {
		Code       *string `json:"code"`
		BackupCode *string `json:"backup_code"`
		UserID     *string `json:"user_id"`
	}
	if err := decodeJSON(body, &req); err != nil {
		return verifyRequest{}, err
	}
	code, backup := deref(req.Code), deref(req.BackupCode)
	out := verifyRequest{VerifyParams: mfa.VerifyParams{Code: code, BackupCode: backup}, UserID: req.UserID}
	switch {
	case code == "" && backup == "":
		return out, mfa.Invalid("code", mfa.ReasonRequired)
	case code != "" && backup != "":
		return out, mfa.Invalid("backup_code", mfa.ReasonMismatch)
	case code != "":
		return out, checkOTP("code", code)
	case len(backup) > 32:
		return out, mfa.Invalid("backup_code", mfa.ReasonLength)
	}
	return out, nil
}

// mfaMethodAuthenticator is the banking name of a TOTP authenticator.
const mfaMethodAuthenticator = "authenticator"

// bankingDeviceName labels an authenticator set up through the banking dialect, which
// has no field for a name.
const bankingDeviceName = "Authenticator"

// parseSecretCreate: POST /settings/MfaSecret, optional {"mfaMethod":"authenticator"}.
func parseSecretCreate(body []byte) (mfa.TOTPSetupParams, error) {
	var req struct {
		MfaMethod *string `json:"mfaMethod"`
	}
	if err := decodeJSON(body, &req); err != nil {
		return mfa.TOTPSetupParams{}, err
	}
	if req.MfaMethod != nil && *req.MfaMethod != mfaMethodAuthenticator {
		return mfa.TOTPSetupParams{}, mfa.ErrInvalidMethod
	}
	return mfa.TOTPSetupParams{DeviceName: bankingDeviceName, ReplaceOnly: true}, nil
}

// parseSignIn: POST /settings/MfaSignIn.
func parseSignIn(body []byte) (mfa.SignInParams, error) {
	var req struct {
		MfaMethod   *string `json:"mfaMethod"`
		Code        *string `json:"code"`
		PhoneNumber *string `json:"phoneNumber"`
		Email       *string `json:"email"`
	}
	if err := decodeJSON(body, &req); err != nil {
		return mfa.SignInParams{}, err
	}
	p := mfa.SignInParams{Method: deref(req.MfaMethod), Code: deref(req.Code)}
	switch p.Method {
	case "":
		return p, mfa.Invalid("mfaMethod", mfa.ReasonRequired)
	case mfaMethodAuthenticator:
		return p, checkOTP("code", p.Code)
	case string(mfa.KindSMS), string(mfa.KindEmail):
		field, addr := "phoneNumber", req.PhoneNumber
		if p.Method == string(mfa.KindEmail) {
			field, addr = "email", req.Email
		}
		p.Address = deref(addr)
		switch {
		case p.Address == "":
			return p, mfa.Invalid(field, mfa.ReasonRequired)
		case !mfa.ValidAddress(mfa.Kind(p.Method), p.Address):
			return p, mfa.Invalid(field, mfa.ReasonFormat)
		case p.Code != "":
			return p, checkOTP("code", p.Code)
		}
		return p, nil
	}
	return p, mfa.ErrInvalidMethod
}

// channelKind reads an sms/email field.
func channelKind(field string, v *string) (mfa.Kind, error) {
	switch {
	case v == nil || *v == "":
		return "", mfa.Invalid(field, mfa.ReasonRequired)
	case *v == string(mfa.KindSMS) || *v == string(mfa.KindEmail):
		return mfa.Kind(*v), nil
	}
	return "", mfa.Invalid(field, mfa.ReasonEnum)
}
