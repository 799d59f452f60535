# Sourced through BASH_ENV by the bash of a held run, before the run's command
# (worker/executor/start_at.py). It waits for the worker's word (stdin: the seconds
# left until the planned instant), or asks the orphan command if the worker died first
# (EOF), then waits for the instant on a pipe no one writes, closes both pipes and puts
# /dev/null on stdin: the command then runs in this very bash exactly as
# `bash -c COMMAND` runs it. What it sets in the environment is unset first (no other
# bash sources this file again, the orphan's included); its own variables at the end.
# TMOUT must not end the wait for the word.
__scheduler_r=${__SCHEDULER_HELD_FDS% *} __scheduler_w=${__SCHEDULER_HELD_FDS#* }
# `read -t` selects on its fd, and an fd at 1024 or above aborts bash (FD_SETSIZE): a
# busy worker's fds are numbered that high, so the read end moves to the lowest free one.
exec {__scheduler_low}<&"$__scheduler_r" {__scheduler_r}<&-
__scheduler_r=$__scheduler_low
eval "__scheduler_orphan=($__SCHEDULER_ORPHAN)"
unset BASH_ENV __SCHEDULER_HELD_FDS __SCHEDULER_ORPHAN
IFS= TMOUT= read -r __scheduler_go || __scheduler_go=
if [ -z "$__scheduler_go" ]; then
    "${__scheduler_orphan[@]}" </dev/null || exit 0
    __scheduler_go=0
fi
read -r -t "$__scheduler_go" -u "$__scheduler_r" __scheduler_go || :
exec {__scheduler_r}<&- {__scheduler_w}>&- </dev/null
unset __scheduler_r __scheduler_w __scheduler_go __scheduler_orphan __scheduler_low
SECONDS=0  # as a bash just started shows it, the wait not counted
