"""Check the sbatch calls of a Slurm run against the GPU needs the rules declare.

Usage: check_submissions.py --calls FILE --rules DIR --workdir DIR --output LOG

FILE holds one shell-quoted sbatch argument list per line (the test's sbatch
wrapper writes it); LOG is Snakemake's output of the run, whose job table says
which rules the run had. Rules whose `resources:` declare `gpu=1` must be
submitted with --gpus=1 and every other submitted rule with no GPU request;
local rules must never be submitted, every GPU rule of the run must have been
submitted, and each GPU job's log must show the GPU that Slurm allocated.
Exits 1 with one line per problem.
"""

import argparse
import re
import shlex
import sys
from collections import defaultdict
from pathlib import Path

RULE = re.compile(r"^rule (\w+):", re.MULTILINE)
GPU_LINE = re.compile(r"^\s+gpu=1,\s*$", re.MULTILINE)
LOCAL_LINE = re.compile(r"^\s+localrule: True\s*$", re.MULTILINE)
GPU_FLAGS = ("--gpus", "--gres", "--gpus-per-node", "--gpus-per-task")
SLURM_BINDING = re.compile(
    r"Slurm job \d+: using its GPUs as allocated \(CUDA_VISIBLE_DEVICES=\d"
)


def declared_rules(folder: Path) -> tuple[set[str], set[str]]:
    """Names of the GPU rules and the local rules in the .smk files of `folder`."""
    gpu, local = set(), set()
    for path in sorted(folder.glob("*.smk")):
        text = path.read_text()
        starts = [(m.start(), m.group(1)) for m in RULE.finditer(text)]
        for (start, name), (end, _) in zip(starts, starts[1:] + [(len(text), "")]):
            body = text[start:end]
            if GPU_LINE.search(body):
                gpu.add(name)
            if LOCAL_LINE.search(body):
                local.add(name)
    return gpu, local


def submissions(calls: Path) -> list[tuple[str, list[str]]]:
    """(rule, sbatch arguments) of each recorded call; the rule from --comment."""
    result = []
    for line in calls.read_text().splitlines():
        if not line.strip():
            continue
        args = shlex.split(line)
        comment = args[args.index("--comment") + 1]
        rule = re.match(r"rule_(\w+?)(_wildcards_.*)?$", comment).group(1)
        result.append((rule, args))
    return result


def planned_rules(output: Path) -> set[str]:
    """Rules in the first "Job stats" table of a Snakemake run's output."""
    lines = output.read_text().splitlines()
    start = lines.index("Job stats:") + 3
    rules = set()
    for line in lines[start:]:
        name = line.split()[0] if line.split() else "total"
        if name == "total":
            break
        rules.add(name)
    return rules


def gpu_requests(args: list[str]) -> list[str]:
    return [arg for arg in args if arg.split("=")[0] in GPU_FLAGS]


def check(calls: Path, rules: Path, workdir: Path, output: Path) -> list[str]:
    """Problems found in the recorded submissions and the GPU jobs' logs."""
    gpu_rules, local_rules = declared_rules(rules)
    planned = planned_rules(output)
    problems = []
    if not gpu_rules:
        problems.append(f"no rule in {rules} declares gpu=1")
    submitted = submissions(calls) if calls.exists() else []
    by_rule = defaultdict(list)
    for rule, args in submitted:
        by_rule[rule].append(args)
        requests = gpu_requests(args)
        if rule in local_rules:
            problems.append(f"local rule {rule} was submitted to Slurm")
        elif rule in gpu_rules and requests != ["--gpus=1"]:
            problems.append(f"GPU rule {rule} submitted with {requests or 'no GPU'}")
        elif rule not in gpu_rules and requests:
            problems.append(f"CPU rule {rule} submitted with {requests}")
    cpu_submitted = set(by_rule) - gpu_rules
    if not cpu_submitted:
        problems.append("no CPU rule was submitted")
    for rule in sorted(gpu_rules & planned):
        if rule not in by_rule:
            problems.append(f"GPU rule {rule} was never submitted")
            continue
        logs = sorted((workdir / "logs" / rule).rglob("*.log"))
        bound = [log for log in logs if SLURM_BINDING.search(log.read_text())]
        if len(bound) < len(by_rule[rule]):
            problems.append(
                f"{rule}: {len(by_rule[rule])} jobs submitted, but only {len(bound)} "
                f"logs under {workdir / 'logs' / rule} show Slurm's GPU allocation"
            )
    print(
        f"{len(submitted)} submissions: "
        + ", ".join(
            f"{rule} x{len(calls)}"
            + (" (--gpus=1)" if rule in gpu_rules else " (no GPU)")
            for rule, calls in sorted(by_rule.items())
        )
    )
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=Path, required=True)
    parser.add_argument("--rules", type=Path, required=True)
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--output", type=Path, required=True)
    args = parser.parse_args()
    problems = check(args.calls, args.rules, args.workdir, args.output)
    for problem in problems:
        print(f"FAIL: {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
