"""Disruptions only inside the maintenance window: when ORCA pods may be moved off a node, and the script that moves
them. Pure: components/maintenance_mover.py places it.

Each ORCA server has a PodDisruptionBudget of minAvailable 1 over its one replica, so no eviction ever takes it
down: not the cluster autoscaler (which also honours safe-to-evict "false"), not a `kubectl drain`, not a node
upgrade. A node upgrade in
AKS's maintenance window cordons the node and drains it; inside the window, the mover deletes (not evicts) the ORCA
pods on cordoned nodes, which stop cleanly through their preStop hook and start on another node, and the drain
proceeds. Outside the window nothing moves them.
"""

from __future__ import annotations

from dataclasses import dataclass

from orca_platform.model.settings import MaintenanceWindow

# The platform's own namespace for it (a name the audit rules already count as the platform's, never a clinic's).
NAMESPACE = "orca-system"
MOVER = "orca-maintenance-mover"
# The ClusterRole each clinic namespace binds the mover's account to (list and delete pods, there only).
MOVER_POD_ROLE = f"{MOVER}-pods"
DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
WEEK = 7 * 24 * 60
EVERY_MINUTES = 5


@dataclass(frozen=True)
class MoverSchedule:
    start: int  # minute of the week in UTC at which the window opens, Monday 00:00 = 0
    minutes: int  # how long it stays open
    cron: str  # in UTC: every few minutes on the days the window touches

    def is_open(self, minute_of_week: int) -> bool:
        return (minute_of_week - self.start) % WEEK < self.minutes


def mover_schedule(window: MaintenanceWindow) -> MoverSchedule:
    hours, minutes = (int(x) for x in window.start_time.split(":"))
    sign = 1 if window.utc_offset[0] == "+" else -1
    off_h, off_m = (int(x) for x in window.utc_offset[1:].split(":"))
    local = DAYS.index(window.day_of_week) * 1440 + hours * 60 + minutes
    start = (local - sign * (off_h * 60 + off_m)) % WEEK
    length = window.duration_hours * 60
    # Cron counts days of the week from Sunday = 0; minute_of_week from Monday = 0.
    days = sorted({((start + m) // 1440 % 7 + 1) % 7 for m in range(length)})
    return MoverSchedule(start=start, minutes=length, cron=f"*/{EVERY_MINUTES} * * * {','.join(str(d) for d in days)}")


# Runs in the tools image (kubectl) with NAMESPACES (the clinic namespaces), SELECTOR (the server pods), WINDOW_START
# and WINDOW_MINUTES. Listed first, then used: a failing kubectl stops the job instead of reading as "nothing to do".
MOVER_SCRIPT = """\
set -eu
# date prints 08 and 09, which $((...)) would read as octal: strip the leading zero.
dow=$(date -u +%u)
h=$(date -u +%H)
m=$(date -u +%M)
now=$(( (dow - 1) * 1440 + ${h#0} * 60 + ${m#0} ))
since=$(( (now - WINDOW_START + 10080) % 10080 ))
if [ "$since" -ge "$WINDOW_MINUTES" ]; then
  echo "outside the maintenance window: ORCA pods stay where they are"
  exit 0
fi
cordoned=$(kubectl get nodes -o jsonpath='{range .items[?(@.spec.unschedulable==true)]}{.metadata.name}{"\\n"}{end}')
if [ -z "$cordoned" ]; then
  echo "maintenance window open, no cordoned node"
  exit 0
fi
for ns in $NAMESPACES; do
  pods=$(kubectl get pod -n "$ns" -l "$SELECTOR" \\
    -o jsonpath='{range .items[*]}{.metadata.name}={.spec.nodeName}{"\\n"}{end}')
  for entry in $pods; do
    pod=${entry%%=*}
    node=${entry#*=}
    for c in $cordoned; do
      if [ "$c" = "$node" ]; then
        # A deletion, not an eviction: the budget forbids evictions. The pod stops through its preStop hook and the
        # Deployment starts it on a schedulable node (its claim is ReadWriteOncePod: never two servers on it).
        kubectl delete pod -n "$ns" "$pod" --wait=false
        echo "moved $ns/$pod off cordoned node $node"
      fi
    done
  done
done
"""
