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

	c.begin("alice")
	want("alice", mfa.CmdStatus, "") // while her write runs, her answers are not used
	c.end("alice")                   // committed: both her answers go, bob's stays
	want("alice", mfa.CmdStatus, "")
	want("alice", mfa.CmdTOTPList, "")
	want("bob", mfa.CmdStatus, "b-status")

	fill("alice", mfa.CmdStatus, "a-status-2")
	c.begin("")
	want("bob", mfa.CmdStatus, "")
	c.end("") // a write of no user: everything goes
	want("alice", mfa.CmdStatus, "")
	want("bob", mfa.CmdStatus, "")
}

// TestReadCacheRefusesAReadOlderThanAWrite: a read that missed before a write of its
// user began, or while it ran, keeps nothing; a write of another user in the same
// shard does not stop it.
func TestReadCacheRefusesAReadOlderThanAWrite(t *testing.T) {
	c := newReadCache(1<<20, nil)
	kept := func(user string) bool {
		_, ok, _ := c.get(user, mfa.CmdStatus)
		return ok
	}
	_, _, before := c.get("alice", mfa.CmdStatus)
	c.begin("alice")
	c.end("alice")
	c.put(before, "alice", mfa.CmdStatus, []byte("old"))
	if kept("alice") {
		t.Fatal("kept a read that missed before the write")
	}

	_, _, during := c.get("alice", mfa.CmdStatus)
	c.begin("alice")
	c.put(during, "alice", mfa.CmdStatus, []byte("maybe old"))
	if kept("alice") {
		t.Fatal("kept a read that ended while a write of the user ran")
	}
	_, _, inside := c.get("alice", mfa.CmdStatus)
	c.end("alice")
	c.put(inside, "alice", mfa.CmdStatus, []byte("maybe old"))
	if kept("alice") {
		t.Fatal("kept a read that missed while a write of the user ran")
	}

	// bob shares alice's shard; his writes leave her reads alone.
	bob := ""
	for i := 0; bob == ""; i++ {
		if u := fmt.Sprintf("bob-%d", i); c.shard(u) == c.shard("alice") {
			bob = u
		}
	}
	_, _, ticket := c.get("alice", mfa.CmdStatus)
	c.begin(bob)
	c.end(bob)
	c.put(ticket, "alice", mfa.CmdStatus, []byte("new"))
	if !kept("alice") {
		t.Fatal("a write of another user in the shard refused alice's read")
	}

	// Everyone's write refuses every read that missed before it.
	_, _, before = c.get("carol", mfa.CmdStatus)
	c.begin("")
	c.end("")
	c.put(before, "carol", mfa.CmdStatus, []byte("old"))
	if kept("carol") {
		t.Fatal("kept a read that missed before a write of everyone")
	}
}

// TestReadCacheForgetsOldWritesSafely: a shard remembers the last write of at most
// droppedKept users; past that, every read that missed before is refused.
func TestReadCacheForgetsOldWritesSafely(t *testing.T) {
	c := newReadCache(1<<20, nil)
	s := c.shard("alice")
	_, _, before := c.get("alice", mfa.CmdStatus)
	c.begin("alice")
	c.end("alice")
	// Writes of other users of the shard, until it no longer remembers alice's.
	for i := 0; i < 100*readCacheShards*droppedKept; i++ {
		if _, remembered := s.dropped["alice"]; !remembered {
			break
		}
		if u := fmt.Sprintf("user-%d", i); c.shard(u) == s {
			c.begin(u)
			c.end(u)
		}
	}
	if _, remembered := s.dropped["alice"]; remembered {
		t.Fatal("the shard still remembers alice: the test did not fill it")
	}
	c.put(before, "alice", mfa.CmdStatus, []byte("old"))
	if _, ok, _ := c.get("alice", mfa.CmdStatus); ok {
		t.Fatal("kept a read older than a write the shard no longer remembers")
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
