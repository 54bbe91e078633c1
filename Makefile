.PHONY: run test unit lint
run:
	./run.sh
test:
	./test.sh
unit:
	./test.sh -m unit
lint:
	.venv/bin/ruff check pipeline agents herald tests bench && .venv/bin/mypy
