#!/usr/bin/env bash
# Runs the whole section-6 sweep (and the daily-traffic experiments) with the
# three strategies, one simulation at a time, and prints one table:
# experiment × strategy: VM-seconds, ÷ reactive-only, ÷ floor, ÷ the floor
# on the fixed routing (every DP stage in its entry DC: the same for every
# strategy; the per-run floor moves with the run's own routing), DP loss,
# ÷ reactive-only. Extra arguments are passed to every `ims-orch simulate`
# (e.g. --overload-at-capacity); every strategy of a row gets the same flags
# and seed.
#
#   scripts/sweep.sh [simulate flags...]
#   SWEEP_OUT=/tmp/sweep SWEEP_ONLY='async-*' scripts/sweep.sh --seed 1
#
# Environment: IMS_ORCH (binary; built into bin/ if unset), SWEEP_OUT (output
# directory, default a temporary one), SWEEP_ONLY (a shell pattern on the
# experiment label).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${IMS_ORCH:-}
if [[ -z $bin ]]; then
	go build -o bin/ims-orch ./cmd/ims-orch
	bin=bin/ims-orch
fi
out=${SWEEP_OUT:-$(mktemp -d)}
mkdir -p "$out"
only=${SWEEP_ONLY:-*}
exps=testdata/experiments

runs=()
for d in 0 60 120 180 240 300 360; do runs+=("async-${d}s|$exps/async-start.yaml|--start-delay ${d}s"); done
for ci in 20 30 40 50 60 70 80; do runs+=("simultaneous-${ci}s|$exps/simultaneous-start-${ci}s.yaml|"); done
runs+=("large-delay-link|$exps/large-delay-link.yaml|")
for f in "$exps"/daily-*.yaml; do
	[[ -e $f ]] && runs+=("$(basename "$f" .yaml)|$f|")
done

printf '%-20s %-10s %10s %9s %8s %8s %8s %9s %8s\n' experiment strategy vm_s buffered ÷react ÷floor ÷fixed dp_loss ÷react
for r in "${runs[@]}"; do
	IFS='|' read -r label file extra <<<"$r"
	# shellcheck disable=SC2053
	[[ $label == $only ]] || continue
	dir=$out/$label
	# shellcheck disable=SC2086
	"$bin" simulate -f "$file" --strategy all -q --out "$dir" $extra "$@" >"$dir.log" 2>&1 || {
		echo "$label: simulate failed, see $dir.log" >&2
		exit 1
	}
	awk -F, -v label="$label" '
		NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
		{ s[NR] = $col["strategy"]; vm[NR] = $col["vm_seconds"]; buf[NR] = $col["buffered_vm_seconds"]
		  fl[NR] = $col["floor_vm_seconds"]; ff[NR] = $col["floor_fixed_vm_seconds"]; loss[NR] = $col["dp_loss"]
		  # the exact packet counts when the summary has them (dp_loss is rounded to 6 decimals)
		  if (("dp_offered_packets" in col) && $col["dp_offered_packets"] > 0) loss[NR] = $col["dp_lost_packets"] / $col["dp_offered_packets"]
		  if ($col["strategy"] == "reactive") { rvm = vm[NR]; rloss = loss[NR] } }
		END { for (i = 2; i <= NR; i++) {
			# reactive-only losing nothing: any loss is an infinite ratio, none prints 0/0
			# (scripts/issue16-criteria.py counts it as met: 0 <= 0.5 x 0)
			# ratios with 4 decimals: a criterion at 1.15 or 0.5 is not decided by rounding
			# to 3 (1.15010 printed as 1.150 passed scripts/issue16-criteria.py)
			lr = (rloss > 0 ? sprintf("%8.4f", loss[i] / rloss) : (loss[i] > 0 ? "     inf" : "     0/0"))
			printf "%-20s %-10s %10d %9d %8.4f %8.4f %8.4f %8.3f%% %s\n", label, s[i], vm[i], buf[i],
				(rvm > 0 ? vm[i] / rvm : 0), (fl[i] > 0 ? vm[i] / fl[i] : 0), (ff[i] > 0 ? vm[i] / ff[i] : 0), 100 * loss[i], lr } }
	' "$dir/summary.csv"
done
echo "outputs: $out" >&2
