package redisstore

import (
	"embed"

	"github.com/redis/go-redis/v9"
)

//go:embed lua/*.lua
var luaFiles embed.FS

// script returns the Lua script in lua/name.lua with the shared prelude.
func script(name string) *redis.Script {
	prelude, err := luaFiles.ReadFile("lua/prelude.lua")
	if err != nil {
		panic(err)
	}
	body, err := luaFiles.ReadFile("lua/" + name + ".lua")
	if err != nil {
		panic(err)
	}
	return redis.NewScript(string(prelude) + "\n" + string(body))
}

var (
	createRunScript        = script("create_run")
	transitionRunScript    = script("transition_run")
	setRunTotalScript      = script("set_run_total")
	setRunHoldScript       = script("set_run_hold")
	cancelRunScript        = script("cancel_run")
	appendBatchesScript    = script("append_batches")
	enqueueBatchScript     = script("enqueue_batch")
	claimBatchScript       = script("claim_batch")
	extendClaimScript      = script("extend_claim")
	completeBatchScript    = script("complete_batch")
	failBatchScript        = script("fail_batch")
	retryBatchesScript     = script("retry_batches")
	upsertDefinitionScript = script("upsert_definition")
	setFlowActiveScript    = script("set_flow_active")
	advanceWatermarkScript = script("advance_watermark")
	rescheduleRunScript    = script("reschedule_run")
	expireClaimsScript     = script("expire_claims")
	cancelExpiredScript    = script("cancel_expired_batches")
	saveFlowSpecScript     = script("save_flow_spec")
	deleteFlowSpecScript   = script("delete_flow_spec")
	recordMissedTickScript = script("record_missed_tick")
)

var appendRunEventScript = script("append_run_event")
