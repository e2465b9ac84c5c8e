package channels

import (
	"fmt"
	"testing"
	"time"

	mfa "github.com/mfad/mfad"
)

func TestReadCacheKeepsUntilItsUserWrites(t *testing.T) {
	c := newReadCache(1<<20, nil)
	fill := func(user, typ, data string) {
		t.Helper()
		if _, ok, ticket := c.get(user, typ); ok {
			t.Fatalf("%s %s kept before it was read", user, typ)
		} else {
			c.put(ticket, user, typ, []byte(data))
		}
	}
	want := func(user, typ, data string) {
		t.Helper()
		got, ok, _ := c.get(user, typ)
		if data == "" && ok {
			t.Fatalf("%s %s still kept: %s", user, typ, got)
		}
		if data != "" && (!ok || string(got) != data) {
			t.Fatalf("%s %s: %q %v, want %q", user, typ, got, ok, data)
		}
	}
	fill("alice", mfa.CmdStatus, "a-status")
	fill("alice", mfa.CmdTOTPList, "a-list")
	fill("bob", mfa.CmdStatus, "b-status")
	want("alice", mfa.CmdStatus, "a-status")
	want("alice", mfa.CmdTOTPList, "a-list")

	c.forget("alice") // alice's write committed: both her answers go, bob's stays
	want("alice", mfa.CmdStatus, "")
	want("alice", mfa.CmdTOTPList, "")
	want("bob", mfa.CmdStatus, "b-status")

	fill("alice", mfa.CmdStatus, "a-status-2")
	c.forget("") // a write of no user (the sweep): everything goes
	want("alice", mfa.CmdStatus, "")
	want("bob", mfa.CmdStatus, "")
}

// TestReadCacheRefusesAReadOlderThanAWrite: a read that missed before a write committed
// may have read the state before it; what it read is not kept.
func TestReadCacheRefusesAReadOlderThanAWrite(t *testing.T) {
	c := newReadCache(1<<20, nil)
	_, _, before := c.get("alice", mfa.CmdStatus)
	c.forget("alice")
	c.put(before, "alice", mfa.CmdStatus, []byte("old"))
	if got, ok, _ := c.get("alice", mfa.CmdStatus); ok {
		t.Fatalf("kept %q, read before the write", got)
	}
	// Everyone's write moves the generation of every shard.
	_, _, before = c.get("bob", mfa.CmdStatus)
	c.forget("")
	c.put(before, "bob", mfa.CmdStatus, []byte("old"))
	if got, ok, _ := c.get("bob", mfa.CmdStatus); ok {
		t.Fatalf("kept %q, read before the sweep", got)
	}
}

func TestReadCacheStaysWithinItsSize(t *testing.T) {
	const size = 64 << 10
	c := newReadCache(size, nil)
	answer := make([]byte, 300)
	for i := range 5000 {
		user := fmt.Sprintf("user-%d", i)
		_, _, ticket := c.get(user, mfa.CmdStatus)
		c.put(ticket, user, mfa.CmdStatus, answer)
		if _, ok, _ := c.get(user, mfa.CmdStatus); !ok {
			t.Fatalf("%s: the answer just read was not kept", user)
		}
	}
	total, users := 0, 0
	for i := range c.shards {
		s := &c.shards[i]
		sum := 0
		for u, answers := range s.users {
			for _, a := range answers {
				sum += answerSize(u, a.data)
			}
			users++
		}
		if sum != s.bytes || sum > c.limit {
			t.Fatalf("shard %d: %d bytes counted, %d kept, limit %d", i, s.bytes, sum, c.limit)
		}
		total += sum
	}
	if total > size || users < 100 {
		t.Fatalf("%d bytes kept for %d users, size %d", total, users, size)
	}

	// An answer larger than a shard is not kept, and drops nothing.
	_, _, ticket := c.get("huge", mfa.CmdStatus)
	c.put(ticket, "huge", mfa.CmdStatus, make([]byte, size))
	if _, ok, _ := c.get("huge", mfa.CmdStatus); ok {
		t.Fatal("an answer larger than its shard was kept")
	}
}

func TestCacheable(t *testing.T) {
	until := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		data any
		want bool
	}{
		{mfa.Status{UserID: "alice"}, true},
		{mfa.Status{UserID: "alice", FailedAttempts: 3}, true},
		{mfa.Status{UserID: "alice", LockedUntil: &until}, false}, // the lock's end changes it
		{mfa.Devices{}, true},
		{mfa.BackupCodeCount{Remaining: 3, Total: 10}, true},
	} {
		if got := cacheable(tc.data); got != tc.want {
			t.Errorf("cacheable(%+v) = %v", tc.data, got)
		}
	}
}

func TestNoReadCacheWithoutASize(t *testing.T) {
	for _, size := range []int{0, -1} {
		if c := newReadCache(size, nil); c != nil {
			t.Errorf("size %d made a cache", size)
		}
	}
}
