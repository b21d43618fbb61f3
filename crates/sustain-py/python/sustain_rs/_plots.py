"""Positional variance diagrams with matplotlib, laid out as pySuStaIn's: one panel
per subtype, biomarkers on the rows, positions on the columns, each event's
colour as strong as the share of samples that put it there."""

import numpy as np

# Levels 1, 2, 3, ... : red, magenta, blue as pySuStaIn's "original" map (the
# z = 1, 2, 3 events), then further colours; they keep distinct lightness in grey.
_LEVEL_COLOURS = [(1.0, 0.0, 0.0), (1.0, 0.0, 1.0), (0.0, 0.0, 1.0), (0.0, 0.6, 0.0), (0.9, 0.6, 0.0)]


def _pyplot():
    """matplotlib's pyplot, or None when it is not installed."""
    try:
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    return plt


class SvgFigure:
    """A positional variance diagram drawn without matplotlib: ``savefig(path)``
    writes it as SVG, and notebooks show it (``_repr_svg_``)."""

    def __init__(self, svg):
        self.svg = svg

    def _repr_svg_(self):
        return self.svg

    def savefig(self, path, **_):
        path = str(path)
        if not path.endswith(".svg"):
            path = path.rsplit(".", 1)[0] + ".svg" if "." in path.rsplit("/", 1)[-1] else path + ".svg"
        with open(path, "w", encoding="utf-8") as f:
            f.write(self.svg)
        return path


def _svg_panels(images, titles, row_labels, stage_label):
    """One SVG with a panel per subtype: a cell per biomarker and position."""
    from html import escape
    cell, left, top, gap = 18, 130, 28, 24
    n_rows, n_cols = images[0].shape[:2]
    width = left + len(images) * (n_cols * cell + gap)
    height = top + n_rows * cell + 40
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'font-family="sans-serif" font-size="11" role="img" '
             f'aria-label="Positional variance diagram">']
    for p, (img, title) in enumerate(zip(images, titles)):
        x0 = left + p * (n_cols * cell + gap)
        parts.append(f'<text x="{x0}" y="16" font-size="13">{escape(title)}</text>')
        for r in range(n_rows):
            for c in range(n_cols):
                rgb = ",".join(str(int(round(255 * v))) for v in img[r, c])
                parts.append(f'<rect x="{x0 + c * cell}" y="{top + r * cell}" width="{cell}" height="{cell}" '
                             f'fill="rgb({rgb})" stroke="#ddd" stroke-width="0.5"/>')
        parts.append(f'<text x="{x0}" y="{top + n_rows * cell + 30}">{escape(stage_label)}</text>')
    for r, label in enumerate(row_labels):
        parts.append(f'<text x="{left - 6}" y="{top + r * cell + 13}" text-anchor="end">{escape(label)}</text>')
    parts.append("</svg>")
    return "\n".join(parts)


def pvd_images(samples_sequence, event_biomarkers, event_levels, n_biomarkers, biomarker_order=None):
    """Per subtype an RGB image (biomarkers x positions x 3) of where the samples
    put each event, and the share matrices behind it."""
    seq = np.asarray(samples_sequence)
    n_s, n_events, n_samples = seq.shape
    images = []
    order = np.arange(n_biomarkers) if biomarker_order is None else _biomarker_rows(
        biomarker_order, event_biomarkers, n_biomarkers)
    for s in range(n_s):
        share = np.zeros((n_events, n_events))  # event x position
        for pos in range(n_events):
            counts = np.bincount(seq[s, pos, :].astype(int), minlength=n_events)
            share[:, pos] = counts / max(n_samples, 1)
        img = np.ones((n_biomarkers, n_events, 3))
        for e in range(n_events):
            colour = np.array(_LEVEL_COLOURS[event_levels[e] % len(_LEVEL_COLOURS)])
            img[event_biomarkers[e]] -= share[e][:, None] * (1.0 - colour)[None, :]
        images.append(np.clip(img[order], 0.0, 1.0))
    return images, order


def _biomarker_rows(biomarker_order, event_biomarkers, n_biomarkers):
    """Rows in the order of the biomarkers' first events in ``biomarker_order``
    (pySuStaIn passes the first subtype's ML sequence of events)."""
    rows = []
    for e in np.asarray(biomarker_order).astype(int):
        b = event_biomarkers[e] if e < len(event_biomarkers) else e
        if b not in rows:
            rows.append(b)
    rows += [b for b in range(n_biomarkers) if b not in rows]
    return np.array(rows[:n_biomarkers])


#: The keyword options of plot_pvd, as pySuStaIn's plot_positional_var names them.
PVD_OPTIONS = ("biomarker_labels", "ml_f_EM", "cval", "subtype_order", "biomarker_order", "title_font_size",
               "stage_font_size", "stage_label", "stage_rot", "stage_interval", "label_font_size", "label_rot",
               "figsize", "subtype_titles", "separate_subtypes", "save_path", "save_kwargs")


def _panel_path(save_path, panel, separate):
    """Where a figure is saved: ``save_path``, or per subtype when separate."""
    path = str(save_path)
    if not separate:
        return path
    stem, dot, ext = path.rpartition(".")
    return f"{stem}_subtype{panel[0]}.{ext}" if dot else f"{path}_subtype{panel[0]}"


def plot_pvd(samples_sequence, samples_f, n_samples, event_biomarkers, event_levels, n_biomarkers,
             biomarker_labels=None, ml_f_EM=None, cval=False, subtype_order=None, biomarker_order=None,
             title_font_size=12, stage_font_size=10, stage_label="SuStaIn Stage", stage_rot=0, stage_interval=1,
             label_font_size=10, label_rot=0, figsize=None, subtype_titles=None, separate_subtypes=False,
             save_path=None, save_kwargs=None):
    """The figure(s) and axes, as pySuStaIn's ``plot_positional_var`` returns them."""
    plt = _pyplot()
    seq = np.asarray(samples_sequence)
    f = np.asarray(samples_f)
    n_s, n_events, _ = seq.shape
    if subtype_order is None:
        subtype_order = np.argsort(np.mean(f, axis=1) if ml_f_EM is None else np.asarray(ml_f_EM))[::-1]
    labels = biomarker_labels if biomarker_labels is not None else [f"Biomarker {b}" for b in range(n_biomarkers)]
    images, rows = pvd_images(seq[np.asarray(subtype_order)], event_biomarkers, event_levels, n_biomarkers,
                              biomarker_order)
    mean_f = np.mean(f, axis=1)[np.asarray(subtype_order)]
    panels = [[i] for i in range(n_s)] if separate_subtypes else [list(range(n_s))]
    figs, axs = [], []
    titles = [subtype_titles[i] if subtype_titles is not None
              else f"Subtype {i + 1} cross-validated" if cval
              else f"Subtype {i + 1} (f={mean_f[i]:.2f}, n={int(np.round(mean_f[i] * n_samples))})"
              for i in range(n_s)]
    if plt is None:
        # No matplotlib: the same diagram as SVG figures (axes: None).
        for panel in panels:
            fig = SvgFigure(_svg_panels([images[i] for i in panel], [titles[i] for i in panel],
                                        [labels[b] for b in rows], stage_label))
            if save_path is not None:
                fig.savefig(_panel_path(save_path, panel, separate_subtypes))
            figs.append(fig)
            axs.append(None)
        return figs, axs
    for panel in panels:
        size = figsize or (max(4.0, 0.35 * n_events + 2) * len(panel), max(3.0, 0.35 * n_biomarkers + 1.5))
        fig, ax = plt.subplots(1, len(panel), figsize=size, squeeze=False)
        for a, i in zip(ax[0], panel):
            a.imshow(images[i], interpolation="nearest", aspect="auto")
            a.set_title(titles[i], fontsize=title_font_size)
            ticks = np.arange(0, n_events, stage_interval)
            a.set_xticks(ticks)
            a.set_xticklabels([str(t + 1) for t in ticks], fontsize=stage_font_size, rotation=stage_rot)
            a.set_yticks(np.arange(n_biomarkers))
            a.set_yticklabels([labels[b] for b in rows], fontsize=label_font_size, rotation=label_rot)
            a.set_xlabel(stage_label, fontsize=label_font_size)
        fig.tight_layout()
        if save_path is not None:
            fig.savefig(_panel_path(save_path, panel, separate_subtypes), **(save_kwargs or {}))
        figs.append(fig)
        axs.append(ax[0])
    return figs, axs
