package handlers

import (
	"bytes"
	"encoding/json"

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

// parseVerify: {"code"}, {"backup_code"} or {"challenge_id","webauthn"}, "user_id"?.
func parseVerify(body []byte) (verifyRequest, error) {
	var req struct {
		Code        *string         `json:"code"`
		BackupCode  *string         `json:"backup_code"`
		ChallengeID *string         `json:"challenge_id"`
		WebAuthn    json.RawMessage `json:"webauthn"`
		UserID      *string         `json:"user_id"`
	}
	if err := decodeJSON(body, &req); err != nil {
		return verifyRequest{}, err
	}
	code, backup := deref(req.Code), deref(req.BackupCode)
	out := verifyRequest{VerifyParams: mfa.VerifyParams{Code: code, BackupCode: backup}, UserID: req.UserID}
	if present(req.WebAuthn) {
		if code != "" || backup != "" {
			return out, mfa.Invalid("webauthn", mfa.ReasonMismatch)
		}
		id, err := checkChallengeID(req.ChallengeID)
		if err != nil {
			return out, err
		}
		out.ChallengeID = id
		out.WebAuthn, err = jsonObject("webauthn", req.WebAuthn)
		return out, err
	}
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
		return mfa.TOTPSetupParams{}, mfa.InvalidMethod("mfaMethod")
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
	}
	kind, ok := mfa.ParseKind(p.Method)
	if !ok || !kind.Rules().Address {
		return p, mfa.InvalidMethod("mfaMethod")
	}
	field, addr := "phoneNumber", req.PhoneNumber
	if kind == mfa.KindEmail {
		field, addr = "email", req.Email
	}
	p.Address = deref(addr)
	switch {
	case p.Address == "":
		return p, mfa.Invalid(field, mfa.ReasonRequired)
	case !mfa.ValidAddress(kind, p.Address):
		return p, mfa.Invalid(field, mfa.ReasonFormat)
	case req.Code != nil:
		// An empty code is a code that is wrong, not a request for another (paid)
		// message.
		return p, checkOTP("code", p.Code)
	}
	return p, nil
}

// channelKind reads a field naming a kind that codes are sent to (sms, email).
func channelKind(field string, v *string) (mfa.Kind, error) {
	if v == nil || *v == "" {
		return "", mfa.Invalid(field, mfa.ReasonRequired)
	}
	if kind, ok := mfa.ParseKind(*v); ok && kind.Rules().Address {
		return kind, nil
	}
	return "", mfa.Invalid(field, mfa.ReasonEnum)
}

// present reports whether a raw JSON member was given (null counts as absent).
func present(raw json.RawMessage) bool {
	return len(raw) > 0 && !bytes.Equal(raw, []byte("null"))
}

// jsonObject checks that a member the workers decode (a WebAuthn credential) is a JSON
// object and passes it on as it is.
func jsonObject(field string, raw json.RawMessage) (json.RawMessage, error) {
	if !present(raw) {
		return nil, mfa.Invalid(field, mfa.ReasonRequired)
	}
	if raw[0] != '{' {
		return nil, mfa.Malformed(field, mfa.ReasonType)
	}
	return raw, nil
}

// checkChallengeID checks a WebAuthn challenge id's shape: the UUID the options gave.
func checkChallengeID(v *string) (string, error) {
	if v == nil || *v == "" {
		return "", mfa.Invalid("challenge_id", mfa.ReasonRequired)
	}
	if !uuidShape(*v) {
		return "", mfa.Invalid("challenge_id", mfa.ReasonFormat)
	}
	return *v, nil
}

// uuidShape reports whether s is a UUID in its canonical lowercase text form.
func uuidShape(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, r := range s {
		switch {
		case i == 8 || i == 13 || i == 18 || i == 23:
			if r != '-' {
				return false
			}
		case !('0' <= r && r <= '9' || 'a' <= r && r <= 'f'):
			return false
		}
	}
	return true
}

// parseWebAuthnRegister: POST /api/v1/mfa/webauthn/register/options {"device_name"}.
func parseWebAuthnRegister(body []byte) (mfa.WebAuthnRegisterParams, error) {
	var req struct {
		DeviceName *string `json:"device_name"`
	}
	if err := decodeJSON(body, &req); err != nil {
		return mfa.WebAuthnRegisterParams{}, err
	}
	name, err := checkLabel("device_name", req.DeviceName, 64)
	return mfa.WebAuthnRegisterParams{DeviceName: name}, err
}

// parseWebAuthnFinish: POST /api/v1/mfa/webauthn/register/verify
// {"challenge_id","credential"}.
func parseWebAuthnFinish(body []byte) (mfa.WebAuthnRegisterVerifyParams, error) {
	var req struct {
		ChallengeID *string         `json:"challenge_id"`
		Credential  json.RawMessage `json:"credential"`
	}
	if err := decodeJSON(body, &req); err != nil {
		return mfa.WebAuthnRegisterVerifyParams{}, err
	}
	id, err := checkChallengeID(req.ChallengeID)
	if err != nil {
		return mfa.WebAuthnRegisterVerifyParams{}, err
	}
	cred, err := jsonObject("credential", req.Credential)
	return mfa.WebAuthnRegisterVerifyParams{ChallengeID: id, Credential: cred}, err
}

// parseWebAuthnLogin: POST /api/v1/mfa/webauthn/authenticate/options {"user_id"?}.
func parseWebAuthnLogin(body []byte) (*string, error) {
	var req struct {
		UserID *string `json:"user_id"`
	}
	err := decodeJSON(body, &req)
	return req.UserID, err
}
