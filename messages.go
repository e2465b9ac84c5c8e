package mfa

import (
	"fmt"
	"strconv"
	"strings"
)

// Languages with a catalogue. Anything else is answered in English.
const (
	LangEnglish = "en"
	LangSpanish = "es"
)

// Keys of success messages. Error messages are keyed by their Code* constant and
// validation reasons by their Reason* constant.
const (
	MsgOK                = "ok"
	MsgSetupStarted      = "setup_started"
	MsgDeviceVerified    = "device_verified"
	MsgDevicesListed     = "devices_listed"
	MsgDeviceRemoved     = "device_removed"
	MsgSecretRemoved     = "secret_removed"
	MsgSignInEnabled     = "signin_enabled"
	MsgSignInDisabled    = "signin_disabled"
	MsgCodeSent          = "code_sent"
	MsgVerified          = "verified"
	MsgBackupCodes       = "backup_codes"
	MsgBackupRegenerated = "backup_regenerated"
	MsgChannelDeleted    = "channel_deleted"
	MsgChannelUpdated    = "channel_updated"
	MsgChannelValidated  = "channel_validated"
	MsgMFAReset          = "mfa_reset"
	MsgMFAError          = "mfa_error"   // DruID error envelope, status 417
	MsgBadRequest        = "bad_request" // DruID error envelope, status 400
)

// Success messages of WebAuthn.
const (
	MsgWebAuthnOptions = "webauthn_options"
	MsgWebAuthnAdded   = "webauthn_added"
	MsgWebAuthnListed  = "webauthn_listed"
	MsgWebAuthnRemoved = "webauthn_removed"
)

// catalogue holds every user-facing text in both languages, in one place.
var catalogue = map[string][2]string{ // key → {en, es}
	// successes
	MsgOK:                {"OK", "OK"},
	MsgSetupStarted:      {"Scan the QR code with your authenticator app, then verify a code", "Escanee el código QR con su aplicación de autenticación y verifique un código"},
	MsgDeviceVerified:    {"TOTP device verified successfully", "Dispositivo TOTP verificado correctamente"},
	MsgDevicesListed:     {"TOTP devices retrieved successfully", "Dispositivos TOTP obtenidos correctamente"},
	MsgDeviceRemoved:     {"TOTP device removed successfully", "Dispositivo TOTP eliminado correctamente"},
	MsgSecretRemoved:     {"MFA secret removed successfully", "Secreto MFA eliminado correctamente"},
	MsgSignInEnabled:     {"MFA sign-in enabled", "Inicio de sesión con MFA activado"},
	MsgSignInDisabled:    {"MFA sign-in disabled successfully", "Inicio de sesión con MFA desactivado correctamente"},
	MsgCodeSent:          {"Verification code sent", "Código de verificación enviado"},
	MsgVerified:          {"Verification successful", "Verificación correcta"},
	MsgBackupCodes:       {"Backup codes status retrieved", "Estado de los códigos de respaldo obtenido"},
	MsgBackupRegenerated: {"Backup codes regenerated; store them safely, they are shown only once", "Códigos de respaldo regenerados; guárdelos en un lugar seguro, solo se muestran una vez"},
	MsgChannelDeleted:    {"MFA channel deleted", "Canal MFA eliminado"},
	MsgChannelUpdated:    {"MFA channel registered, verification code sent", "Canal MFA registrado, código de verificación enviado"},
	MsgChannelValidated:  {"MFA channel validated", "Canal MFA validado"},
	MsgMFAReset:          {"MFA reset for the user", "MFA restablecido para el usuario"},
	MsgMFAError:          {"MFA error", "Error de MFA"},
	MsgBadRequest:        {"Bad request", "Petición incorrecta"},

	// outcomes
	CodeValidation:          {"The request is invalid", "La petición no es válida"},
	CodeMalformed:           {"The request is malformed", "La petición está mal formada"},
	CodePayloadTooLarge:     {"The request body is larger than 64 KiB", "El cuerpo de la petición supera los 64 KiB"},
	CodeRequestTimeout:      {"The request body did not arrive in time", "El cuerpo de la petición no ha llegado a tiempo"},
	CodeUnauthorized:        {"The access token is missing, invalid or expired", "El token de acceso falta, no es válido o ha caducado"},
	CodeForbidden:           {"You are not allowed to do this", "No tiene permiso para realizar esta operación"},
	CodeStepUpRequired:      {"This operation needs a more recent sign-in", "Esta operación requiere un inicio de sesión más reciente"},
	CodeNotFound:            {"Not found", "No encontrado"},
	CodeMethodNotAllowed:    {"Method not allowed", "Método no permitido"},
	CodeInvalidCode:         {"The code is invalid or has expired", "El código no es válido o ha caducado"},
	CodeNoPendingSetup:      {"There is no pending TOTP setup to verify", "No hay ninguna configuración TOTP pendiente de verificar"},
	CodeNoPendingSecret:     {"There is no pending MFA secret, channel or authenticator to check the code against", "No hay ningún secreto MFA ni canal pendiente, ni autenticador, con el que comprobar el código"},
	CodeTooManyAttempts:     {"Too many attempts, try again later", "Demasiados intentos, inténtelo más tarde"},
	CodeDeviceNotFound:      {"TOTP device not found", "Dispositivo TOTP no encontrado"},
	CodeDeviceLimit:         {"The maximum number of TOTP devices is reached", "Se ha alcanzado el número máximo de dispositivos TOTP"},
	CodeDeviceRemove:        {"The TOTP device could not be removed", "No se ha podido eliminar el dispositivo TOTP"},
	CodeMFANotEnabled:       {"MFA is not enabled for this user", "MFA no está activado para este usuario"},
	CodeNoTOTPDevice:        {"Backup codes need a verified TOTP device", "Los códigos de respaldo requieren un dispositivo TOTP verificado"},
	CodeSecretExists:        {"An authenticator is already set up, remove it before creating a new secret", "Ya hay un autenticador configurado, elimínelo antes de crear un secreto nuevo"},
	CodeInvalidMethod:       {"The MFA method is not supported", "El método MFA no está soportado"},
	CodeChannelNotFound:     {"The MFA channel is not set up", "El canal MFA no está configurado"},
	CodeChannelNotVoluntary: {"The MFA channel is mandatory for this entry point and cannot be removed", "El canal MFA es obligatorio para este punto de entrada y no se puede eliminar"},
	CodeChannelExists:       {"The MFA channel is already set up", "El canal MFA ya está configurado"},
	CodeKeyReused:           {"This Idempotency-Key was already used for a different request", "Esta Idempotency-Key ya se usó para una petición distinta"},
	CodeConflict:            {"The request conflicts with the current state", "La petición entra en conflicto con el estado actual"},
	CodeInternal:            {"Internal server error", "Error interno del servidor"},
	CodeUnavailable:         {"The service is temporarily unavailable, try again", "El servicio no está disponible temporalmente, inténtelo de nuevo"},
	CodeGatewayTimeout:      {"The authorization server could not be reached", "No se ha podido contactar con el servidor de autorización"},

	// WebAuthn
	MsgWebAuthnOptions:       {"Use your security key or passkey", "Use su llave de seguridad o su llave de acceso"},
	MsgWebAuthnAdded:         {"Security key or passkey registered successfully", "Llave de seguridad o llave de acceso registrada correctamente"},
	MsgWebAuthnListed:        {"Security keys and passkeys retrieved successfully", "Llaves de seguridad y llaves de acceso obtenidas correctamente"},
	MsgWebAuthnRemoved:       {"Security key or passkey removed successfully", "Llave de seguridad o llave de acceso eliminada correctamente"},
	CodeInvalidChallenge:     {"The WebAuthn challenge is unknown, used or expired; start again", "El desafío WebAuthn es desconocido, ya se usó o ha caducado; empiece de nuevo"},
	CodeInvalidCredential:    {"The security key or passkey response could not be verified", "No se ha podido verificar la respuesta de la llave de seguridad o llave de acceso"},
	CodeCredentialNotAllowed: {"This security key or passkey is not allowed by the service's policy", "La política del servicio no permite esta llave de seguridad o llave de acceso"},
	CodeCredentialExists:     {"This security key or passkey is already registered", "Esta llave de seguridad o llave de acceso ya está registrada"},
	CodeCredentialNotFound:   {"Security key or passkey not found", "Llave de seguridad o llave de acceso no encontrada"},
	CodeCredentialLimit:      {"The maximum number of security keys and passkeys is reached", "Se ha alcanzado el número máximo de llaves de seguridad y llaves de acceso"},

	// validation reasons; %s is the field name
	ReasonRequired: {"the field %s is required", "el campo %s es obligatorio"},
	ReasonType:     {"the field %s has the wrong type", "el campo %s tiene un tipo incorrecto"},
	ReasonFormat:   {"the field %s has an invalid format", "el campo %s tiene un formato no válido"},
	ReasonLength:   {"the field %s has an invalid length", "el campo %s tiene una longitud no válida"},
	ReasonEnum:     {"the field %s has a value that is not allowed", "el campo %s tiene un valor no permitido"},
	ReasonMismatch: {"the field %s does not match the request", "el campo %s no coincide con la petición"},
	ReasonSyntax:   {"the request body is not valid JSON", "el cuerpo de la petición no es JSON válido"},
}

// Text returns the catalogue text for key in lang; an unknown key is returned as is.
func Text(lang, key string) string {
	t, ok := catalogue[key]
	if !ok {
		return key
	}
	if lang == LangSpanish {
		return t[1]
	}
	return t[0]
}

// ErrorText is the user-facing message of an outcome, naming the field when there is one.
func ErrorText(lang string, err *Error) string {
	msg := Text(lang, err.Code)
	if err.Reason != "" {
		detail := Text(lang, err.Reason)
		if strings.Contains(detail, "%s") {
			detail = fmt.Sprintf(detail, err.Field)
		}
		msg += ": " + detail
	}
	return msg
}

// Lang picks the catalogue language for an Accept-Language header (RFC 9110 §12.5.4):
// Spanish when es is the caller's most preferred of the two, English otherwise.
func Lang(acceptLanguage string) string {
	best, bestQ := LangEnglish, -1.0
	for _, part := range strings.Split(acceptLanguage, ",") {
		tag, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		q := 1.0
		if v, ok := strings.CutPrefix(strings.TrimSpace(params), "q="); ok {
			parsed, err := strconv.ParseFloat(v, 64)
			if err != nil {
				continue
			}
			q = parsed
		}
		primary, _, _ := strings.Cut(strings.ToLower(strings.TrimSpace(tag)), "-")
		if (primary == LangSpanish || primary == LangEnglish) && q > bestQ && q > 0 {
			best, bestQ = primary, q
		}
	}
	return best
}
