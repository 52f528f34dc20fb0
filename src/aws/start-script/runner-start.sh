#!/usr/bin/env bash
# runner-fleet EC2 start script: makes a booting instance into one GitHub Actions runner.
#
# runner-fleet launches the instance, then writes the runner's registration (a JIT config, or a registration token
# with the runner's settings) as the SecureString SSM parameter <RUNNER_FLEET_SSM_PREFIX>/<instance id>, which only
# this instance may read and delete. This script learns its instance id through IMDSv2, polls for the parameter,
# deletes it, starts the runner with the secret in its environment (never on a command line), and shuts the
# instance down once the runner is done, after tagging the instance with how the runner ended (runner-fleet:exit-code,
# which the controller reads once the instance has ended). It never logs a secret. Contract for custom AMIs:
# docs/ec2-start-script.md.
set -euo pipefail

RUNNER_FLEET_START_SCRIPT_VERSION=2

# Settings: each may be preset in the environment (the default user data exports them).
: "${RUNNER_FLEET_SSM_PREFIX:=}"
: "${RUNNER_FLEET_RUNNER_DIR:=/opt/actions-runner}"
: "${RUNNER_FLEET_RUN_AS:=}"
: "${RUNNER_FLEET_HOOK_JOB_STARTED:=}"
: "${RUNNER_FLEET_HOOK_JOB_COMPLETED:=}"
: "${RUNNER_FLEET_PRE_RUNNER_SCRIPT:=}"
: "${RUNNER_FLEET_SHUTDOWN_COMMAND:=shutdown -h now}"
: "${RUNNER_FLEET_IMDS_ENDPOINT:=http://169.254.169.254}"
: "${RUNNER_FLEET_PARAMETER_TIMEOUT:=600}"
: "${RUNNER_FLEET_PARAMETER_POLL_MAX:=10}"
: "${RUNNER_FLEET_RESTART_DELAY:=5}"
: "${RUNNER_FLEET_MAX_QUICK_RESTARTS:=10}"
: "${RUNNER_FLEET_AWS_CLI:=aws}"
: "${RUNNER_FLEET_SPOT_POLL:=5}"
: "${RUNNER_FLEET_SYSLOG:=true}"

# The AWS CLI v2 pages output on a terminal; nothing here is read by a person.
export AWS_PAGER=''

log() {
  printf '%s runner-fleet-start: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*" >&2
  if [ "$RUNNER_FLEET_SYSLOG" = true ] && command -v logger >/dev/null 2>&1; then
    logger -t runner-fleet-start -- "$*" 2>/dev/null || true
  fi
}

# Known once IMDS has answered: who this instance is, and where.
instance_id=''
region=''
# How the runner ended, for the runner-fleet:exit-code tag (src/aws/tags.ts): its exit code, `no-parameter` (gave up
# waiting for the parameter), `start-failed` (gave up before the runner ran) or `interrupted` (a spot interruption
# notice came while it ran). Empty until there is something to report.
exit_report=''

# Tags this instance runner-fleet:exit-code=$1: best effort, as an instance may not be allowed to (older roles) or AWS
# may not answer; the controller then judges by how the instance ended. Nothing secret goes into a tag.
tag_outcome() {
  [ -n "$region" ] || return 0
  local out
  if out=$("$RUNNER_FLEET_AWS_CLI" ec2 create-tags --region "$region" --resources "$instance_id" --tags \
    "Key=runner-fleet:exit-code,Value=$1" --cli-connect-timeout 5 --cli-read-timeout 10 2>&1); then
    log "tagged the instance runner-fleet:exit-code=$1"
  else
    log "warning: tagging the instance failed: $(printf '%s' "$out" | tr '\n' ' ' | cut -c1-300)"
  fi
}

# Every way out but a signal ends here: an instance without a runner has nothing left to do.
shutdown_instance() {
  [ -z "$exit_report" ] || tag_outcome "$exit_report"
  log "shutting the instance down ($RUNNER_FLEET_SHUTDOWN_COMMAND)"
  bash -c "$RUNNER_FLEET_SHUTDOWN_COMMAND" || log "the shutdown command failed with exit code $?"
  exit "$1"
}

# Gives up: $1 says why, $2 is the script's exit code (default 1), $3 what the tag reports (default: exit_report).
give_up() {
  log "$1"
  [ -z "${3:-}" ] || exit_report=$3
  shutdown_instance "${2:-1}"
}

is_count() {
  case $1 in '' | *[!0-9]*) return 1 ;; *) return 0 ;; esac
}

# --- checks that need no network -------------------------------------------------------------------------------------
log "start script version $RUNNER_FLEET_START_SCRIPT_VERSION"
[ -n "$RUNNER_FLEET_SSM_PREFIX" ] || give_up "RUNNER_FLEET_SSM_PREFIX is not set: no parameter to read"
for setting in RUNNER_FLEET_PARAMETER_TIMEOUT RUNNER_FLEET_PARAMETER_POLL_MAX RUNNER_FLEET_RESTART_DELAY \
  RUNNER_FLEET_MAX_QUICK_RESTARTS RUNNER_FLEET_SPOT_POLL; do
  is_count "${!setting}" || give_up "$setting must be a whole number of seconds or times, not '${!setting}'"
done
for tool in curl base64 "$RUNNER_FLEET_AWS_CLI"; do
  command -v "$tool" >/dev/null 2>&1 || give_up "'$tool' is not installed: the image needs bash, curl, base64 and the AWS CLI"
done

# --- who am I: IMDSv2 ------------------------------------------------------------------------------------------------
imds_new_token() {
  curl -fsS --max-time 5 -X PUT -H 'X-aws-ec2-metadata-token-ttl-seconds: 21600' \
    "$RUNNER_FLEET_IMDS_ENDPOINT/latest/api/token" 2>/dev/null
}
imds_token=''
for _ in $(seq 1 30); do
  if imds_token=$(imds_new_token) && [ -n "$imds_token" ]; then
    break
  fi
  imds_token=''
  sleep 2
done
[ -n "$imds_token" ] || give_up "no IMDSv2 session token from $RUNNER_FLEET_IMDS_ENDPOINT after 30 tries"

# The session token goes to curl on stdin, not on its command line.
imds_get() {
  printf 'X-aws-ec2-metadata-token: %s\n' "$imds_token" |
    curl -fsS --max-time 5 --retry 3 --retry-delay 1 -H @- "$RUNNER_FLEET_IMDS_ENDPOINT/latest/meta-data/$1"
}
instance_id=$(imds_get instance-id) || give_up "reading the instance id from IMDS failed"
# The region is read last: until it is known, nothing is tagged (not a bad instance id either).
case $instance_id in i-*) ;; *) give_up "IMDS gave '$instance_id' as the instance id" ;; esac
region=$(imds_get placement/region) || give_up "reading the region from IMDS failed"
parameter_name="${RUNNER_FLEET_SSM_PREFIX%/}/$instance_id"
log "instance $instance_id in $region; runner parameter $parameter_name"
# From here on a give-up is reported on the instance: the runner did not get to run.
exit_report=start-failed

# --- checks of the image ---------------------------------------------------------------------------------------------
[ -x "$RUNNER_FLEET_RUNNER_DIR/run.sh" ] ||
  give_up "no executable run.sh in RUNNER_FLEET_RUNNER_DIR ($RUNNER_FLEET_RUNNER_DIR): the image needs actions/runner there"
for hook in RUNNER_FLEET_HOOK_JOB_STARTED RUNNER_FLEET_HOOK_JOB_COMPLETED; do
  if [ -n "${!hook}" ]; then
    case ${!hook} in /*) ;; *) give_up "$hook must be an absolute path, not '${!hook}'" ;; esac
    [ -f "${!hook}" ] || give_up "$hook names ${!hook}, which does not exist"
  fi
done
if [ -n "$RUNNER_FLEET_RUN_AS" ] && ! id -u "$RUNNER_FLEET_RUN_AS" >/dev/null 2>&1; then
  give_up "RUNNER_FLEET_RUN_AS names the user '$RUNNER_FLEET_RUN_AS', who does not exist"
fi

if [ -n "$RUNNER_FLEET_PRE_RUNNER_SCRIPT" ]; then
  log "running the pre-runner script"
  pre_status=0
  bash "$RUNNER_FLEET_PRE_RUNNER_SCRIPT" || pre_status=$?
  [ "$pre_status" -eq 0 ] || give_up "the pre-runner script failed with exit code $pre_status"
fi

# --- the runner parameter --------------------------------------------------------------------------------------------
# runner-fleet writes it just after the instance exists, so it may not be there yet: poll with backoff.
errors=$(mktemp)
spot_watch=''
# shellcheck disable=SC2317 # called by the trap below
on_exit() {
  rm -f "$errors"
  if [ -n "$spot_watch" ]; then kill "$spot_watch" 2>/dev/null || true; fi
}
trap on_exit EXIT
parameter=''
deadline=$((SECONDS + RUNNER_FLEET_PARAMETER_TIMEOUT))
delay=1
waited_logged=false
while :; do
  if parameter=$("$RUNNER_FLEET_AWS_CLI" ssm get-parameter --region "$region" --name "$parameter_name" \
    --with-decryption --query Parameter.Value --output text 2>"$errors"); then
    break
  fi
  parameter=''
  if grep -q ParameterNotFound "$errors"; then
    if [ "$waited_logged" = false ]; then
      log "the runner parameter is not there yet; waiting up to $RUNNER_FLEET_PARAMETER_TIMEOUT s"
      waited_logged=true
    fi
  else
    # The CLI's error names the call and the cause (access denied, throttling), never the parameter's value.
    log "reading the runner parameter failed: $(tr '\n' ' ' <"$errors" | cut -c1-300)"
  fi
  if [ "$SECONDS" -ge "$deadline" ]; then
    give_up "no runner parameter $parameter_name after $RUNNER_FLEET_PARAMETER_TIMEOUT s: runner-fleet never wrote it \
(the instance was not launched by runner-fleet, or runner-fleet failed or gave the runner up), or this instance's role \
may not read it (ssm:GetParameter, kms:Decrypt)" 1 no-parameter
  fi
  sleep "$delay"
  delay=$((delay * 2))
  [ "$delay" -le "$RUNNER_FLEET_PARAMETER_POLL_MAX" ] || delay=$RUNNER_FLEET_PARAMETER_POLL_MAX
done
log "read the runner parameter"
if "$RUNNER_FLEET_AWS_CLI" ssm delete-parameter --region "$region" --name "$parameter_name" 2>"$errors"; then
  log "deleted the runner parameter"
else
  log "warning: deleting the runner parameter failed (runner-fleet deletes it with the instance): \
$(tr '\n' ' ' <"$errors" | cut -c1-300)"
fi

# Format (src/aws/runner-parameter.ts): one key=<base64> line per field; unknown keys are a later version's.
declare -A field=()
while IFS= read -r line || [ -n "$line" ]; do
  [ -n "$line" ] || continue
  key=${line%%=*}
  [ "$key" != "$line" ] || give_up "the runner parameter has a line that is not key=value"
  case $key in
    version | mode | jitconfig | url | token | name | labels | runnergroup | ephemeral) ;;
    *) continue ;;
  esac
  field[$key]=$(printf '%s' "${line#*=}" | base64 -d 2>/dev/null) ||
    give_up "the runner parameter's $key field is not base64"
done < <(printf '%s\n' "$parameter")
parameter=''
line=''

[ "${field[version]:-}" = 1 ] ||
  give_up "the runner parameter has version '${field[version]:-}'; start script version $RUNNER_FLEET_START_SCRIPT_VERSION reads version 1"
mode=${field[mode]:-}
case $mode in
  jit)
    [ -n "${field[jitconfig]:-}" ] || give_up "the runner parameter (jit) has no jitconfig"
    ephemeral=true
    ;;
  token)
    for key in url token name; do
      [ -n "${field[$key]:-}" ] || give_up "the runner parameter (token) has no $key"
    done
    case ${field[ephemeral]:-} in
      true | false) ephemeral=${field[ephemeral]} ;;
      *) give_up "the runner parameter's ephemeral field is '${field[ephemeral]:-}', not true or false" ;;
    esac
    ;;
  *) give_up "the runner parameter has mode '$mode'; this script knows jit and token" ;;
esac

# --- the runner ------------------------------------------------------------------------------------------------------
cd "$RUNNER_FLEET_RUNNER_DIR"
[ -z "$RUNNER_FLEET_HOOK_JOB_STARTED" ] || export ACTIONS_RUNNER_HOOK_JOB_STARTED="$RUNNER_FLEET_HOOK_JOB_STARTED"
[ -z "$RUNNER_FLEET_HOOK_JOB_COMPLETED" ] || export ACTIONS_RUNNER_HOOK_JOB_COMPLETED="$RUNNER_FLEET_HOOK_JOB_COMPLETED"
if [ "$(id -u)" -eq 0 ] && { [ -z "$RUNNER_FLEET_RUN_AS" ] || [ "$RUNNER_FLEET_RUN_AS" = root ]; }; then
  log "the runner runs as root (set RUNNER_FLEET_RUN_AS to use another user)"
  export RUNNER_ALLOW_RUNASROOT=1
fi

# Runs "$@" as the runner user; called in a background subshell, so exec keeps one process to signal.
as_runner() {
  if [ -z "$RUNNER_FLEET_RUN_AS" ] || [ "$RUNNER_FLEET_RUN_AS" = "$(id -un)" ]; then
    exec "$@"
  elif command -v runuser >/dev/null 2>&1; then
    exec runuser -u "$RUNNER_FLEET_RUN_AS" -- "$@"
  else
    exec sudo -E -H -u "$RUNNER_FLEET_RUN_AS" -- "$@"
  fi
}

# A stop signal (the instance shutting down) goes to the runner, which ends its job and deregisters its session.
child=''
stopping=false
# shellcheck disable=SC2317 # called by the trap below
on_signal() {
  stopping=true
  if [ -n "$child" ]; then kill -TERM "$child" 2>/dev/null || true; fi
}
trap on_signal TERM INT HUP

# Runs "$@" in the background (so signals reach us while it runs) and sets exit_code when it ends.
run_step() {
  as_runner "$@" &
  child=$!
  while :; do
    exit_code=0
    wait "$child" || exit_code=$?
    if [ "$exit_code" -gt 128 ] && kill -0 "$child" 2>/dev/null; then continue; fi
    break
  done
  child=''
}

if [ "$mode" = token ]; then
  args=(--unattended --url "${field[url]}" --name "${field[name]}" --runnergroup "${field[runnergroup]:-Default}"
    --no-default-labels --work _work)
  [ -z "${field[labels]:-}" ] || args+=(--labels "${field[labels]}")
  [ "$ephemeral" = false ] || args+=(--ephemeral)
  [ -x ./config.sh ] || give_up "no executable config.sh in $RUNNER_FLEET_RUNNER_DIR (needed in token mode)"
  log "configuring runner ${field[name]} (ephemeral: $ephemeral)"
  # actions/runner reads ACTIONS_RUNNER_INPUT_<NAME> as config.sh's --<name>: the token stays off the command line.
  export ACTIONS_RUNNER_INPUT_TOKEN="${field[token]}"
  run_step ./config.sh "${args[@]}"
  unset ACTIONS_RUNNER_INPUT_TOKEN
  field[token]=''
  [ "$stopping" = false ] || exit 143
  [ "$exit_code" -eq 0 ] || give_up "config.sh failed with exit code $exit_code" "$exit_code" "$exit_code"
fi

# --- spot interruption notices ---------------------------------------------------------------------------------------
# While the runner runs, a watcher reads IMDS meta-data/spot/instance-action every RUNNER_FLEET_SPOT_POLL s (AWS
# recommends 5): 404 until AWS schedules a spot interruption, then the action and its time, about two minutes ahead.
# AWS may then take the instance without another word, and the runner's job with it, so the watcher tags the instance
# `interrupted` at once; the controller reads that once the instance has ended. Should the runner still finish on its
# own before that, its exit code replaces the tag. On-demand instances never get a notice.
# A fresh session token each time: a job may outlast the first one's 6 hours.
watch_spot() {
  trap - TERM INT HUP
  while sleep "$RUNNER_FLEET_SPOT_POLL"; do
    imds_token=$(imds_new_token) || continue
    if imds_get spot/instance-action >/dev/null 2>&1; then
      log "spot interruption notice: AWS is about to take this instance"
      tag_outcome interrupted
      return 0
    fi
  done
}
if [ "$RUNNER_FLEET_SPOT_POLL" -gt 0 ]; then
  watch_spot &
  spot_watch=$!
fi

# Exit codes are actions/runner's: 0 done, 1 terminated, 2 retryable, 3 and 4 updating, 5 session conflict, ...
quick_restarts=0
while :; do
  started=$SECONDS
  log "starting the runner (run.sh)"
  if [ "$mode" = jit ]; then
    export ACTIONS_RUNNER_INPUT_JITCONFIG="${field[jitconfig]}"
    run_step ./run.sh
    unset ACTIONS_RUNNER_INPUT_JITCONFIG
  else
    run_step ./run.sh
  fi
  if [ "$stopping" = true ]; then
    log "stopped by a signal; the runner exited with code $exit_code"
    exit 143
  fi
  case $exit_code in
    3 | 4) reason="is updating" ;;
    2) if [ "$ephemeral" = true ]; then break; fi; reason="hit a retryable error" ;;
    *) break ;;
  esac
  if [ $((SECONDS - started)) -lt 60 ]; then quick_restarts=$((quick_restarts + 1)); else quick_restarts=0; fi
  if [ "$quick_restarts" -gt "$RUNNER_FLEET_MAX_QUICK_RESTARTS" ]; then
    log "the runner exited $quick_restarts times in a row within a minute of starting; giving up"
    break
  fi
  log "the runner $reason (exit code $exit_code): starting it again in $RUNNER_FLEET_RESTART_DELAY s"
  sleep "$RUNNER_FLEET_RESTART_DELAY"
  [ "$stopping" = false ] || exit 143
done

log "the runner exited with code $exit_code; it will not run again"
if [ -n "$spot_watch" ]; then
  kill "$spot_watch" 2>/dev/null || true
  wait "$spot_watch" 2>/dev/null || true
  spot_watch=''
fi
exit_report=$exit_code
shutdown_instance "$exit_code"
