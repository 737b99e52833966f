"""``sptrain contract show``: print a contract profile."""

from __future__ import annotations

import argparse
import json

from ..contract.profiles import DEFAULT_PROFILE, get_profile, profile_ids, profile_to_dict
from .commands import help_of

NAME = "contract"


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(NAME, help=help_of(NAME),
                            description="Show what modeld expects of exported models, per contract profile.")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    show = actions.add_parser("show", help="print one profile (inputs, output shape, output slices)",
                              description="Print a contract profile: inputs, output shape and slices per model.")
    show.add_argument("--profile", default=DEFAULT_PROFILE,
                      help=f"profile id (default {DEFAULT_PROFILE}; known: {', '.join(profile_ids())})")
    show.add_argument("--json", action="store_true", help="print machine-readable JSON")
    show.set_defaults(func=run_show)
    listing = actions.add_parser("list", help="list the profile ids", description="List the contract profiles.")
    listing.set_defaults(func=run_list)


def run_list(args: argparse.Namespace) -> int:
    for pid in profile_ids():
        profile = get_profile(pid)
        default = " (default)" if pid == DEFAULT_PROFILE else ""
        print(f"{pid}{default}: {profile.releases}")
    return 0


def run_show(args: argparse.Namespace) -> int:
    profile = get_profile(args.profile)
    if args.json:
        print(json.dumps(profile_to_dict(profile), indent=2))
        return 0
    print(f"profile {profile.id}: {profile.releases}")
    print(f"  {profile.description}")
    for name, spec in profile.models.items():
        print(f"\n{name}  ->  {spec.output_name} {spec.output_shape} float32")
        for inp in spec.inputs:
            print(f"  input  {inp.name:<24} {str(inp.shape):<20} {inp.dtype}")
        for head in spec.heads:
            s = spec.output_slices()[head.name]
            hyp = f" hypotheses={head.hypotheses} selection={head.selection}" if head.hypotheses else ""
            print(f"  output {head.name:<24} [{s.start}:{s.stop}]  {head.kind.value:<7} shape={head.shape}{hyp}")
        print(f"  output {'pad':<24} {spec.pad}")
    return 0
