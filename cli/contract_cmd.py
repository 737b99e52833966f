"""``sptrain contract show|list``: what each modeld runtime expects of exported models."""

from __future__ import annotations

import argparse
import json

from ..contract.profiles import DEFAULT_PROFILE, ModelSpec, Profile, get_profile, profile_ids, profile_to_dict
from .commands import help_of

NAME = "contract"


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(NAME, help=help_of(NAME),
                            description="Show what modeld expects of exported models, per contract profile.")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    show = actions.add_parser("show", help="print one profile (files, inputs, outputs, state pairs, sources)",
                              description="Print a contract profile: the files its runtime opens and how it finds "
                                          "them, then inputs, output shape and slices per model.")
    show.add_argument("--profile", default=DEFAULT_PROFILE,
                      help=f"profile id (default {DEFAULT_PROFILE}; known: {', '.join(profile_ids())})")
    show.add_argument("--json", action="store_true", help="print machine-readable JSON")
    show.set_defaults(func=run_show)
    listing = actions.add_parser("list", help="list every profile: releases, files, inputs, state pairs, outputs",
                                 description="List the contract profiles with their releases, files, inputs (name, "
                                             "shape, dtype), state pairs and outputs.")
    listing.add_argument("--json", action="store_true", help="print machine-readable JSON (a list of profiles)")
    listing.set_defaults(func=run_list)


def _runtime_models(profile: Profile) -> dict[str, ModelSpec]:
    """The graphs the runtime runs: the fused one, or vision and policy."""
    return {profile.graph.name: profile.graph} if profile.graph is not None else profile.models


def run_list(args: argparse.Namespace) -> int:
    if args.json:
        print(json.dumps([profile_to_dict(get_profile(pid)) for pid in profile_ids()], indent=2))
        return 0
    for pid in profile_ids():
        profile = get_profile(pid)
        default = " (default)" if pid == DEFAULT_PROFILE else ""
        print(f"{pid}{default}: {profile.releases}")
        print(f"  files: {', '.join(profile.runtime.file_names())}")
        for name, spec in _runtime_models(profile).items():
            inputs = ", ".join(f"{i.name} {tuple(i.shape)} {i.dtype}" for i in spec.inputs)
            print(f"  {name}: inputs {inputs}")
            print(f"  {name}: outputs {spec.output_name} {spec.output_shape} float32"
                  + "".join(f", {o}" for _, o in profile.state_pairs))
        if profile.state_pairs:
            print("  state pairs: " + ", ".join(f"{o} -> {i}" for i, o in profile.state_pairs))
    return 0


def _print_model(name: str, spec: ModelSpec) -> None:
    print(f"\n{name}  ->  {spec.output_name} {spec.output_shape} float32")
    for inp in spec.inputs:
        print(f"  input  {inp.name:<24} {str(inp.shape):<20} {inp.dtype}")
    for head in spec.heads:
        s = spec.output_slices()[head.name]
        hyp = f" hypotheses={head.hypotheses} selection={head.selection}" if head.hypotheses else ""
        print(f"  output {head.name:<24} [{s.start}:{s.stop}]  {head.kind.value:<7} shape={head.shape}{hyp}")
    if spec.pad is not None:
        print(f"  output {'pad':<24} {spec.pad}")


def run_show(args: argparse.Namespace) -> int:
    profile = get_profile(args.profile)
    if args.json:
        print(json.dumps(profile_to_dict(profile), indent=2))
        return 0
    runtime = profile.runtime
    print(f"profile {profile.id}: {profile.releases}")
    print(f"  {profile.description}")
    print(f"  packaging {runtime.packaging}; trains the networks of {profile.trains_as}")
    print("  files:")
    for file_name, holds in runtime.files:
        print(f"    {file_name:<36} {holds}")
    print(f"  modeld finds them: {runtime.finds}")
    print(f"  a device compiles its own pickle: {runtime.device_compile}")
    for repo, path, commit in runtime.upstream:
        print(f"  read from {repo}: {path} @ {commit}")
    for name, spec in profile.models.items():
        _print_model(name, spec)
    if profile.graph is not None:
        _print_model(f"{profile.graph.name} (the graph modeld runs: vision + policy + action)", profile.graph)
        for state, next_state in profile.state_pairs:
            spec_in = profile.graph.input(state)
            print(f"  output {next_state:<24} {str(spec_in.shape):<20} {spec_in.dtype}  (fed back into {state})")
    return 0
