from spiketune import __version__


def main() -> int:
    print(__version__)
    return 0
