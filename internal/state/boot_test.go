package state

import (
	"encoding/json"
	"reflect"
	"testing"
)

// A boot.json written before Lacking held values (display text, quoted
// when odd) and Where a name (a sentence) still loads, as values.
func TestBootReadsOldLayout(t *testing.T) {
	old := `{"schema":1,"want":"6.1.0-47-amd64","pinned":"6.1.0-47-amd64","loader":"GRUB",
		"lacking":{"6.1.0-56-amd64":["critmod/1.0","\"my mod/2.0\""]},
		"where":"GRUB_DEFAULT in /etc/default/grub.d/zz-dkms-guard.cfg","time":"2026-01-02T03:04:05Z"}`
	var b Boot
	if err := json.Unmarshal([]byte(old), &b); err != nil {
		t.Fatal(err)
	}
	want := map[string][]MV{"6.1.0-56-amd64": {{"critmod", "1.0"}, {"my mod", "2.0"}}}
	if !reflect.DeepEqual(b.Lacking, want) {
		t.Errorf("Lacking = %#v, want %#v", b.Lacking, want)
	}
	if b.Newest != "" || b.Waived != nil {
		t.Errorf("an old file has Newest %q, Waived %v", b.Newest, b.Waived)
	}
	if b.Where != "/etc/default/grub.d/zz-dkms-guard.cfg" || b.Pinned != "6.1.0-47-amd64" {
		t.Errorf("Where, Pinned = %q, %q", b.Where, b.Pinned)
	}

	sd := `{"schema":1,"loader":"systemd-boot","where":"the EFI variable LoaderEntryDefault (bootctl set-default 3f2a-6.1.0-47-amd64.conf)"}`
	if err := json.Unmarshal([]byte(sd), &b); err != nil || b.Where != "3f2a-6.1.0-47-amd64.conf" {
		t.Errorf("systemd-boot Where = %q, %v", b.Where, err)
	}
}

// What this dkms-guard writes reads back the same, odd names included.
func TestBootRoundTrip(t *testing.T) {
	b := Boot{Schema: Schema, Pinned: "6.1.0-47-amd64", Loader: "GRUB", Where: "/etc/default/grub.d/zz-dkms-guard.cfg",
		Lacking: map[string][]MV{"6.1.0-56-amd64": {{"my/mod\xff", "1.0"}}}, Newest: "6.1.0-56-amd64",
		Waived: &Waiver{Kernel: "6.1.0-56-amd64", Lacking: []MV{{"nvidia", "535"}}}}
	data, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	var got Boot
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, b) {
		t.Errorf("round trip:\n got %#v\nwant %#v", got, b)
	}
}
