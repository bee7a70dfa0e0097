"""One router a resource: health, models, visualisations, pages."""
