"""Real vector data shipped with vitseg (see DATA_LICENSES.md); read with vitseg.io.data_path."""
