package gateway

import "testing"

// TestRedact: a provider's refusal is logged and dead-lettered, so the number or address
// it echoes is masked in whatever form it comes back, and the code is never kept.
func TestRedact(t *testing.T) {
	sms := &Notification{To: "+34600111222", Code: "577215"}
	mail := &Notification{To: "Alice@Example.com", Code: "123456"}
	uk := &Notification{To: "+447700900123", Code: "482913"}
	cases := []struct {
		name    string
		n       *Notification
		channel string
		in      string
		want    string
	}{
		{"number as sent", sms, ChannelSMS, "The 'To' number +34600111222 is not valid", "The 'To' number +34******222 is not valid"},
		{"number without its plus", sms, ChannelSMS, "unreachable: 34600111222", "unreachable: ********222"},
		{"number in national form", sms, ChannelSMS, "number 600111222 blocked", "number ******222 blocked"},
		{"number with the 00 of an international call", sms, ChannelSMS, "to 0034600111222", "to **********222"},
		{"national form with a trunk 0", uk, ChannelSMS, "07700900123 is a landline", "********123 is a landline"},
		{"leading zeros alone are no number", uk, ChannelSMS, "code 000000123", "code 000000123"},
		{"code in the text", sms, ChannelSMS, "body 'Your code is 577215' refused", "body 'Your code is ******' refused"},
		{"short digit runs stay", sms, ChannelSMS, "error 21211 (HTTP 400) after 222 ms", "error 21211 (HTTP 400) after 222 ms"},
		{"digits that do not end the number stay", sms, ChannelSMS, "account 3460011 over quota", "account 3460011 over quota"},
		{"address as sent", mail, ChannelEmail, "550 5.1.1 <Alice@Example.com>: unknown", "550 5.1.1 <A****@Example.com>: unknown"},
		{"address in another case", mail, ChannelEmail, "550 5.1.1 <alice@example.com>: unknown", "550 5.1.1 <A****@Example.com>: unknown"},
		{"nothing to mask", mail, ChannelEmail, "421 try later", "421 try later"},
		{"no notification", nil, ChannelSMS, "+34600111222", "+34600111222"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := redact(tc.in, tc.n, tc.channel); got != tc.want {
				t.Errorf("redact(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}
