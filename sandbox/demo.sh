#!/usr/bin/env bash
# make demo: the main job running on the sandbox, with real output. Every command below runs as the
# tool `demo` (its uid, HOME and kubeconfig), exactly as a maintainer would type it after `become demo`.
set -uo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
become() { "$REPO/sandbox/become" demo "$@"; }
step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; become bash -c "$*"; rc=$?; [ $rc = 0 ] || printf '(exit %s)\n' "$rc"; }
say() { printf '\n# %s\n' "$*"; }

say "A one-off job: stdout is appended to ~/hello.out, like on the grid"
step 'jsub -N hello /bin/echo "Hello from the grid, now on Kubernetes"'
step 'jsub -sync y -quiet -N hello2 /bin/true; cat ~/hello.out'

say "-sync y waits (by watching the Job) and exits with the job's own exit code"
step 'jsub -sync y -N count /bin/sh -c "for i in 1 2 3; do echo line \$i; done; exit 3"; echo "jsub exited with $?"; cat ~/count.out ~/count.err'

say "A continuous job (jstart = -continuous -once): restarted until it exits 0"
step 'jstart -N bot -mem 256m /bin/sh -c "while true; do date; sleep 5; done"'
step 'sleep 2; jstart -N bot -mem 256m /bin/sh -c "sleep 1"; echo "second jstart exited with $? (-once)"; tail -1 ~/bot.err'

say "qstat and job see it; scripts parse these exactly as they did on the grid"
step 'for i in $(seq 30); do job -q bot; [ $? = 1 ] && break; sleep 1; done; qstat'
step 'job bot; echo "job exit code: $? (1 = running)"; job -v bot'
step 'qstat | awk "{ print \$3 }" | grep bot'

say "jstop deletes it gracefully; the usual polling loop ends once it is really gone"
step 'jstop bot; while qstat -j bot >/dev/null 2>&1; do sleep 1; done; echo gone; job -v bot'

say "A crontab: each entry becomes a CronJob; the text itself is kept in the namespace"
cat > "$REPO/.sandbox/demo.crontab" <<'CRON'
# m h dom mon dow command
* * * * * /usr/bin/jsub -N minutely -once -quiet /bin/sh -c 'date >> $HOME/minutely.log'
CRON
chmod 644 "$REPO/.sandbox/demo.crontab"
step "crontab $REPO/.sandbox/demo.crontab && crontab -l"
step 'kubectl get cronjobs'
say "Waiting for the first run (the CronJob controller starts it at the next full minute)"
step 'for i in $(seq 90); do [ -s ~/minutely.log ] && break; sleep 1; done; cat ~/minutely.log'
step 'crontab -r; kubectl get cronjobs'
say "Done. Try it yourself:  sandbox/become demo   (then jsub, qstat, crontab -e …);  make sandbox-down to stop."
