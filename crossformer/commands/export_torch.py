"""crossformer export-torch MODEL.keras -o OUT: back to a state_dict (or folder) the original loads."""
from ..arguments import EXIT_OK


def register(commands):
    parser = commands.add_parser("export-torch", help="a .keras Crossformer -> a state_dict the original loads",
                                 description="Write the weights of a .keras Crossformer as a PyTorch state_dict "
                                 "(or, with --folder, a checkpoint folder in the original release's layout).")
    parser.add_argument("model", help="the .keras file")
    parser.add_argument("-o", "--output", required=True, help="the .pth file (or folder, with --folder) to write")
    parser.add_argument("--folder", action="store_true", help="write checkpoint.pth + args.json "
                        "[+ scale_statistic.pkl] into the folder OUT")
    parser.add_argument("--force", action="store_true", help="overwrite an existing output")
    parser.set_defaults(run=run)


def run(args):
    from converter import export_torch

    written, config = export_torch(args.model, args.output, folder=args.folder, force=args.force)
    what = "checkpoint folder (checkpoint.pth, args.json[, scale_statistic.pkl])" if args.folder else "state_dict"
    if config["variant"] == "tslib":
        print(f"{args.model} -> {written}: {what} that Time-Series-Library's Crossformer loads with strict=True")
    else:
        print(f"{args.model} -> {written}: {what} that the original release loads with strict=True")
    if config["legacy_mix"]:
        print("note: the model uses the pre-December-2023 attention (--legacy-mix): any release loads these weights, "
              "but only code before c10c8ea (or reference_torch with legacy_mix=True) computes the same function")
    return EXIT_OK
