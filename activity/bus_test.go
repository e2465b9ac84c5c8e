package activity

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	mfa "github.com/mfad/mfad"
)

func TestDecodeReply(t *testing.T) {
	type data struct {
		Secret string `json:"secret"`
		N      int    `json:"n"`
	}
	tests := []struct {
		name      string
		body      string
		wantReply mfa.Reply
		wantData  data
		wantErr   bool
	}{
		{"data decoded in the same pass", `{"ok":true,"replayed":true,"data":{"secret":"S","n":3}}`,
			mfa.Reply{OK: true, Replayed: true}, data{Secret: "S", N: 3}, false},
		{"an outcome without data", `{"ok":false,"code":"TOO_MANY_ATTEMPTS","retry_after":60}`,
			mfa.Reply{Code: mfa.CodeTooManyAttempts, RetryAfter: 60}, data{}, false},
		{"null data", `{"ok":true,"data":null}`, mfa.Reply{OK: true}, data{}, false},
		{"data of the wrong shape", `{"ok":true,"data":{"n":"three"}}`, mfa.Reply{}, data{}, true},
		{"not JSON", `{"ok":tru`, mfa.Reply{}, data{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got data
			reply, err := decodeReply([]byte(tt.body), &got)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err %v, want error %v", err, tt.wantErr)
			}
			if tt.wantErr {
				return
			}
			if !reflect.DeepEqual(reply, tt.wantReply) || got != tt.wantData {
				t.Fatalf("reply %+v data %+v, want %+v %+v", reply, got, tt.wantReply, tt.wantData)
			}
			// Without a destination the data stays in the reply, raw.
			raw, err := decodeReply([]byte(tt.body), nil)
			if err != nil {
				t.Fatal(err)
			}
			var again data
			if len(raw.Data) > 0 {
				if err := json.Unmarshal(raw.Data, &again); err != nil {
					t.Fatal(err)
				}
			}
			if again != tt.wantData {
				t.Fatalf("raw data %s decodes to %+v, want %+v", raw.Data, again, tt.wantData)
			}
		})
	}
}

// BenchmarkDecodeStatusReply: a status reply of a user with four TOTP devices, decoded
// as the API node did before (envelope, then the data from its RawMessage) and in one
// pass. Compare the two sub-benchmarks' ns/op.
func BenchmarkDecodeStatusReply(b *testing.B) {
	t0 := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	st := mfa.Status{UserID: "user-00042", SignInEnabled: true, BackupCodesRemaining: 10, BackupCodesTotal: 10}
	for i := range 4 {
		at := t0.Add(time.Duration(i) * time.Hour)
		st.Methods = append(st.Methods, mfa.Method{ID: int64(1000 + i), Kind: mfa.KindTOTP, Label: "Phone",
			Verified: true, Voluntary: true, Primary: i == 0, EntryPoint: "bank-app", CreatedAt: at, VerifiedAt: &at, LastUsedAt: &at})
	}
	data, err := json.Marshal(st)
	if err != nil {
		b.Fatal(err)
	}
	body, err := json.Marshal(mfa.Reply{OK: true, Data: data})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("two-pass", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			reply, err := decodeReply(body, nil)
			var got mfa.Status
			if err == nil {
				err = json.Unmarshal(reply.Data, &got)
			}
			if err != nil || len(got.Methods) != 4 {
				b.Fatal(err)
			}
		}
	})
	b.Run("one-pass", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var got replyInto
			var st mfa.Status
			got.Data = &st
			if err := json.Unmarshal(body, &got); err != nil || len(st.Methods) != 4 {
				b.Fatal(err)
			}
		}
	})
	b.Run("reader", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var got mfa.Status
			if _, ok := decodeReadReply(body, &got); !ok || len(got.Methods) != 4 {
				b.Fatal("refused")
			}
		}
	})
}
