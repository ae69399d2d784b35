# One command per job; each creates .venv/ and installs what is missing first.
PY := .venv/bin/python

.PHONY: setup demo test test-slow docs typecheck bench clean

setup:
	@bash scripts/setup.sh

demo: setup  ## the main job: SA at beta = 9 on S^2, run file, figures and summary in out/demo/
	$(PY) -m spherepde demo --out out/demo

test: setup  ## the default test suite (a few minutes)
	$(PY) -m pytest -q

test-slow: setup  ## validation-grade runs marked slow
	$(PY) -m pytest -q -m slow

docs: setup  ## the documentation site in docs/_build/html (Sphinx; warnings are errors)
	$(PY) -m sphinx -W --keep-going -q -b html docs docs/_build/html

typecheck: setup  ## mypy on the package (CI runs it)
	$(PY) -m mypy

bench: setup  ## RHS vs the transforms it needs (S², in a whole run, S¹, general B); weighted points; Dedalus if installed; about 10 minutes
	$(PY) benchmarks/bench_rhs.py
	$(PY) benchmarks/bench_run.py
	$(PY) benchmarks/bench_band.py
	$(PY) benchmarks/bench_flux.py
	$(PY) benchmarks/bench_circle.py
	$(PY) benchmarks/bench_quadrature.py
	$(PY) benchmarks/bench_points.py
	$(PY) benchmarks/bench_dedalus.py

clean:
	rm -rf out .pytest_cache .hypothesis docs/_build
