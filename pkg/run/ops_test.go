package run

import "testing"

// A worker and a scheduler on one host listen on different ops ports
// unless told otherwise (both used :9090: the second failed with "address
// already in use").
func TestOpsAddr(t *testing.T) {
	for _, tc := range []struct{ configured, def, want string }{
		{"", DefaultWorkerOpsAddr, ":9090"},
		{"", DefaultSchedulerOpsAddr, ":9091"},
		{"127.0.0.1:0", DefaultSchedulerOpsAddr, "127.0.0.1:0"},
		{"off", DefaultWorkerOpsAddr, ""},
	} {
		if got := opsAddr(tc.configured, tc.def); got != tc.want {
			t.Errorf("opsAddr(%q, %q) = %q, want %q", tc.configured, tc.def, got, tc.want)
		}
	}
	if DefaultWorkerOpsAddr == DefaultSchedulerOpsAddr {
		t.Error("worker and scheduler share a default ops address")
	}
}
