package channels

import "testing"

// TestWebAuthnPolicyBuilds: the relying parties a deployment may configure build, and
// the ones the library would refuse are refused when the worker is made, not at the
// first ceremony.
func TestWebAuthnPolicyBuilds(t *testing.T) {
	cases := []struct {
		name string
		p    WebAuthnPolicy
		ok   bool
	}{
		{"defaults", WebAuthnPolicy{}, true},
		{"a domain, a web origin and an Android app",
			WebAuthnPolicy{RPID: "example.com", Origins: []string{"https://id.example.com", "android:apk-key-hash:q1w2e3"}}, true},
		{"required verification, device-bound, direct attestation",
			WebAuthnPolicy{RequireUserVerification: true, RefuseSynced: true, Attestation: "direct"}, true},
		{"an unknown attestation", WebAuthnPolicy{Attestation: "enterprise-ish"}, false},
		{"an IP address as RP ID", WebAuthnPolicy{RPID: "127.0.0.1"}, false},
		{"an unknown opaque origin", WebAuthnPolicy{Origins: []string{"https://id.example.com", "ios:bundle-id"}}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := tc.p
			p.setDefaults()
			_, err := p.relyingParty()
			if (err == nil) != tc.ok {
				t.Fatalf("relyingParty() = %v, want ok %v", err, tc.ok)
			}
		})
	}
}
