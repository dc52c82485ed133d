# GPU image for deep_nets (not built in this repository's CI: it has no Docker engine).
#   docker build -t largestep .
#   docker run --gpus all -v $PWD/data:/largestep/data -v $PWD/runs:/largestep/runs largestep \
#       --dataset=cifar10 --lr_init=0.75 --lr_schedule=piecewise_05epochs --warmup_exp=1.05 \
#       --model=resnet18_plain --model_width=64 --epochs=100 --batch_size=256 --momentum=0.0 \
#       --l2_reg=0.0 --no_data_augm --eval_iter_freq=200 --exp_name=no_explicit_reg
# Add --download once to fetch CIFAR into the mounted data/ (MD5-checked).
FROM pytorch/pytorch:2.5.1-cuda12.4-cudnn9-runtime

WORKDIR /largestep
# deep_nets needs torch, numpy, matplotlib, tqdm and mnist1d only; the base image's torchvision is not used
RUN pip uninstall -y torchvision torchaudio || true
COPY pyproject.toml README.md ./
COPY largestep ./largestep
COPY deep_nets ./deep_nets
RUN pip install --no-cache-dir "numpy>=1.24" "matplotlib>=3.7" "tqdm>=4.60" "mnist1d>=0.0.2" \
    && pip install --no-cache-dir --no-deps -e .

ENTRYPOINT ["python", "deep_nets/train.py", "--data_dir=/largestep/data", "--out_dir=/largestep/runs"]
CMD ["--help"]
