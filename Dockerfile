# GPU image for deep_nets/train.py.  Not built in this repository's CI (its machines run no Docker engine); linted
# by hadolint there (tests/test_docker.py), its entry point tested as a script.
#   docker build -t largestep .
#   mkdir -p data runs          # before the first run: a folder Docker creates for a mount belongs to root
#   docker run --gpus all --user "$(id -u):$(id -g)" -v "$PWD/data:/data" -v "$PWD/runs:/runs" largestep \
#       --dataset=cifar10 --lr_init=0.75 --lr_schedule=piecewise_05epochs --warmup_exp=1.05 \
#       --model=resnet18_plain --model_width=64 --epochs=100 --batch_size=256 --momentum=0.0 \
#       --l2_reg=0.0 --no_data_augm --eval_iter_freq=200 --exp_name=no_explicit_reg
# Add --download once to fetch CIFAR into the mounted data/ (MD5-checked).  Several GPUs: --entrypoint torchrun
# with --nproc_per_node=N -m deep_nets.train --data_dir=/data --out_dir=/runs ...
FROM pytorch/pytorch:2.5.1-cuda12.4-cudnn9-runtime

# The package from the build context, not editable; torch is the image's (2.5.1, CUDA 12.4). Its other
# dependencies but jupyter (notebooks only) are named here.
WORKDIR /build
COPY pyproject.toml README.md ./
COPY largestep ./largestep
COPY deep_nets ./deep_nets
RUN pip install --no-cache-dir "numpy==2.1.3" "numba==0.61.2" "matplotlib==3.9.2" "tqdm==4.67.1" "mnist1d==0.0.2.post1" \
    && pip install --no-cache-dir --no-deps . \
    && useradd --create-home --uid 1000 largestep \
    && mkdir /data /runs \
    && chown largestep:largestep /data /runs

# --user with a host uid has no home of its own: caches (matplotlib, torch) go to /tmp
ENV HOME=/tmp
USER 1000:1000
WORKDIR /runs
VOLUME ["/data", "/runs"]
# train.py with --data_dir=/data --out_dir=/runs, after refusing (one line, with the fix) a /runs it cannot write
ENTRYPOINT ["sh", "/build/deep_nets/docker_entrypoint.sh"]
CMD ["--help"]
