"""Shared plotting for the bench (matplotlib, headless)."""


def loglog(series, xlabel, ylabel, title, path):
    """series: {label: (xs, ys)} drawn as log-log lines with markers, saved to `path`."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(5.5, 4))
    for label, (xs, ys) in series.items():
        ax.loglog(xs, ys, "o-", label=label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
