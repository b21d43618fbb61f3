"""Progress of a fit through tqdm, when it is installed (as pySuStaIn shows it)."""


class _Bars:
    """Receives ``(kind, n_subtypes, done, total, finished)`` from the Rust fit about
    ten times a second and keeps one tqdm bar per phase."""

    def __init__(self, tqdm):
        self._tqdm = tqdm
        self._bars = {}

    def __call__(self, kind, n_subtypes, done, total, finished):
        key = (kind, n_subtypes)
        bar = self._bars.get(key)
        if bar is None:
            if finished and done == 0:
                return
            if kind == "em":
                desc, unit = f"E-M, {n_subtypes} subtype(s)", " jobs"
            else:
                desc, unit = f"MCMC, {n_subtypes} subtype(s)", "it"
            bar = self._tqdm(total=total or None, desc=desc, unit=unit, leave=True)
            self._bars[key] = bar
        if bar.disable or getattr(bar, "_closed", False):
            return
        if total and bar.total != total:
            # E-M's total is known only once its first jobs have started.
            bar.total = total
        bar.n = done
        bar.refresh()
        if finished:
            bar.close()
            bar._closed = True

    def close(self):
        for bar in self._bars.values():
            bar.close()


class _Silent:
    def __call__(self, *args):
        pass

    def close(self):
        pass


def progress_callback():
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return _Silent()
    return _Bars(tqdm)
