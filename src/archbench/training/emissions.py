"""CodeCarbon's offline tracker around a training run (no network needed: the grid's carbon
intensity comes from the configured country)."""

from __future__ import annotations

import contextlib
import logging
import os


@contextlib.contextmanager
def track_emissions(output_dir: str, enabled: bool, country_iso_code: str | None, project_name: str = "archbench"):
    """Yield a dict that holds `emissions_kg`, `energy_kwh` and `duration_s` once the block ends.

    Writes `emissions.csv` in `output_dir`. A tracker that cannot start (no permission to read
    power counters, ...) must not kill a training run: it is logged and the values stay None.
    """
    result = {"emissions_kg": None, "energy_kwh": None, "emissions_duration_s": None}
    tracker = None
    if enabled:
        try:
            from codecarbon import OfflineEmissionsTracker

            os.makedirs(output_dir, exist_ok=True)
            tracker = OfflineEmissionsTracker(
                country_iso_code=country_iso_code,
                output_dir=output_dir,
                output_file="emissions.csv",
                project_name=project_name,
                log_level="error",
                save_to_file=True,
                allow_multiple_runs=True,
            )
            tracker.start()
        except Exception as err:  # noqa: BLE001 - carbon tracking is best effort
            logging.getLogger(__name__).warning("CodeCarbon tracker did not start: %s", err)
            tracker = None
    try:
        yield result
    finally:
        if tracker is not None:
            emissions = tracker.stop()
            data = getattr(tracker, "final_emissions_data", None)
            result.update(
                emissions_kg=float(emissions) if emissions is not None else None,
                energy_kwh=float(data.energy_consumed) if data else None,
                emissions_duration_s=float(data.duration) if data else None,
            )
