#!/usr/bin/env Rscript
# Reference outputs of DESeq2's vst / rlog / counts(normalized=TRUE) / plotPCA and edgeR's log-CPM
# and limma's plotMDS, for tests/test_transforms.py.
#
# Run from the repository root (needs python with numpy/pandas for the 400-sample simulation):
#     Rscript tests/reference/make_transforms_reference.R [DATASET ...]
# (default all: airway pasilla sim400 sim30; naming some rewrites only their tables).
# Writes tests/reference/out/transforms_*.csv.gz and tests/reference/out/transforms_versions.txt.
#
# Tables keep a fixed subset of genes (rows round(seq(1, n_genes, length = K)) of the input, 1-based)
# so that they stay small; every transform is computed on all genes.

suppressPackageStartupMessages({
  library(DESeq2)
  library(edgeR)
  library(limma)
})

script_path <- local({
  a <- grep("^--file=", commandArgs(trailingOnly = FALSE), value = TRUE)
  if (length(a)) normalizePath(sub("^--file=", "", a[1])) else normalizePath("tests/reference/make_transforms_reference.R")
})
ref_dir <- dirname(script_path)
repo_dir <- normalizePath(file.path(ref_dir, "..", ".."))
bundled_dir <- file.path(repo_dir, "src", "pbglm", "datasets", "data")
out_dir <- file.path(ref_dir, "out")
dir.create(out_dir, showWarnings = FALSE, recursive = TRUE)
python <- Sys.getenv("PYTHON", "python3")

SIG <- 10

write_gz <- function(df, name) {
  for (j in seq_along(df)) if (is.double(df[[j]])) df[[j]] <- signif(df[[j]], SIG)
  con <- gzfile(file.path(out_dir, paste0("transforms_", name, ".csv.gz")), "w", compression = 9)
  write.csv(df, con, row.names = FALSE, quote = FALSE)
  close(con)
}

# genes x samples matrix restricted to rows `keep`, with a leading gene column
gene_table <- function(mat, keep) {
  data.frame(gene = rownames(mat)[keep], mat[keep, , drop = FALSE], check.names = FALSE)
}

load_data <- function(name) {
  if (name == "airway") {
    counts <- as.matrix(read.csv(file.path(bundled_dir, "airway_counts.csv.gz"), row.names = 1, check.names = FALSE))
    samples <- read.csv(file.path(bundled_dir, "airway_samples.csv"), row.names = 1, stringsAsFactors = FALSE)
    samples$cell <- factor(samples$cell)
    samples$dex <- factor(samples$dex, levels = c("untrt", "trt"))
    counts <- counts[, rownames(samples)]
    list(counts = counts, samples = samples, design = ~ cell + dex)
  } else if (name == "pasilla") {
    counts <- as.matrix(read.csv(file.path(bundled_dir, "pasilla_counts.csv.gz"), row.names = 1, check.names = FALSE))
    samples <- read.csv(file.path(bundled_dir, "pasilla_samples.csv"), stringsAsFactors = FALSE, check.names = FALSE)
    rownames(samples) <- sub("fb$", "", samples$file)
    samples <- samples[, c("condition", "type")]
    samples$condition <- factor(samples$condition, levels = c("untreated", "treated"))
    samples$type <- factor(samples$type)
    counts <- counts[, rownames(samples)]  # the sample order of pbglm.datasets.pasilla()
    list(counts = counts, samples = samples, design = ~ type + condition)
  } else if (name %in% c("sim400", "sim30")) {
    f <- tempfile(fileext = ".csv")
    status <- system2(python, c(file.path(ref_dir, "simulate_transforms.py"), f, name))
    if (status != 0) stop("simulate_transforms.py failed")
    counts <- as.matrix(read.csv(f, row.names = 1, check.names = FALSE))
    samples <- read.csv(paste0(f, ".samples.csv"), row.names = 1, stringsAsFactors = FALSE)
    samples$condition <- factor(samples$condition, levels = c("ctrl", "treated"))
    if (name == "sim30") {
      samples$batch <- factor(samples$batch)
      list(counts = counts, samples = samples, design = ~ batch + condition)
    } else {
      list(counts = counts, samples = samples, design = ~ condition)
    }
  }
}

pca_table <- function(mat, ntop = 500) {
  # DESeq2's plotPCA(returnData = TRUE) on a plain matrix: the ntop most variable rows, prcomp
  se <- SummarizedExperiment(assays = list(x = mat), colData = DataFrame(g = factor(rep("a", ncol(mat)))))
  d <- plotPCA(DESeqTransform(se), intgroup = "g", ntop = ntop, returnData = TRUE)
  data.frame(sample = colnames(mat), PC1 = d$PC1, PC2 = d$PC2,
             percent_var1 = attr(d, "percentVar")[1], percent_var2 = attr(d, "percentVar")[2])
}

mds_table <- function(mat, selection) {
  m <- plotMDS(mat, top = 500, gene.selection = selection, plot = FALSE)
  data.frame(sample = colnames(mat), dim1 = m$x, dim2 = m$y,
             var_explained1 = m$var.explained[1], var_explained2 = m$var.explained[2])
}

datasets <- commandArgs(trailingOnly = TRUE)
if (!length(datasets)) datasets <- c("airway", "pasilla", "sim400", "sim30")
for (name in datasets) {
  message("== ", name)
  d <- load_data(name)
  n_keep <- if (name %in% c("sim400", "sim30")) 100 else 300
  keep <- unique(round(seq(1, nrow(d$counts), length.out = n_keep)))
  dds <- DESeqDataSetFromMatrix(d$counts, d$samples, d$design)

  # log-CPM (edgeR 3.40: calcNormFactors is normLibSizes) and normalised counts
  y <- calcNormFactors(DGEList(d$counts))
  lcpm <- cpm(y, log = TRUE, prior.count = 2)
  write_gz(gene_table(lcpm, keep), paste0(name, "_log_cpm"))
  if (name != "sim400") write_gz(gene_table(cpm(y, log = TRUE, prior.count = 0.5), keep), paste0(name, "_log_cpm_prior05"))
  dds <- estimateSizeFactors(dds)
  write_gz(gene_table(counts(dds, normalized = TRUE), keep), paste0(name, "_normalized_counts"))
  write_gz(data.frame(sample = colnames(dds), size_factor = sizeFactors(dds), norm_factor = y$samples$norm.factors),
           paste0(name, "_factors"))

  # vst, blind and with the design (DESeq() first, as a user would before vst(blind = FALSE))
  vb <- assay(vst(dds, blind = TRUE))
  write_gz(gene_table(vb, keep), paste0(name, "_vst_blind"))
  dds_fit <- DESeq(dds, quiet = TRUE)
  vd <- assay(vst(dds_fit, blind = FALSE))
  write_gz(gene_table(vd, keep), paste0(name, "_vst_design"))
  # which trend vst used (its coefficients are on the nsub subset)
  sub_trend <- local({
    bm <- rowMeans(counts(dds, normalized = TRUE))
    o <- dds[bm > 5, ]
    b <- bm[bm > 5]
    o <- o[order(b)[round(seq(1, sum(bm > 5), length = 1000))], ]
    design(o) <- ~1
    o <- estimateDispersionsFit(estimateDispersionsGeneEst(o, quiet = TRUE), quiet = TRUE)
    attr(dispersionFunction(o), "coefficients")
  })
  write_gz(data.frame(asympt_disp = sub_trend[1], extra_pois = sub_trend[2]), paste0(name, "_vst_blind_trend"))

  # PCA of the blind vst: on all genes (plotPCA's top 500) and on the stored rows only
  write_gz(pca_table(vb), paste0(name, "_pca"))
  write_gz(pca_table(vb[keep, ], ntop = 200), paste0(name, "_pca_rows"))
  # MDS of the log-CPM: on all genes and on the stored rows only
  write_gz(mds_table(lcpm, "pairwise"), paste0(name, "_mds_pairwise"))
  write_gz(mds_table(lcpm, "common"), paste0(name, "_mds_common"))
  write_gz(mds_table(lcpm[keep, ], "pairwise"), paste0(name, "_mds_rows_pairwise"))
  write_gz(mds_table(lcpm[keep, ], "common"), paste0(name, "_mds_rows_common"))

  if (name != "sim400") {
    write_gz(gene_table(assay(vst(dds, blind = TRUE, fitType = "mean")), keep), paste0(name, "_vst_mean"))
    rb <- rlog(dds, blind = TRUE)
    write_gz(gene_table(assay(rb), keep), paste0(name, "_rlog_blind"))
    rd <- rlog(dds_fit, blind = FALSE)
    write_gz(gene_table(assay(rd), keep), paste0(name, "_rlog_design"))
    write_gz(data.frame(blind = attr(rb, "betaPriorVar"), design = attr(rd, "betaPriorVar")),
             paste0(name, "_rlog_prior_var"))
  }
  if (name == "pasilla") {
    # fitType = "local" (locfit; pbglm's local trend is a different smoother)
    write_gz(gene_table(assay(vst(dds, blind = TRUE, fitType = "local")), keep), "pasilla_vst_local")
    # too few genes for vst's subset: varianceStabilizingTransformation on the first 800 genes
    # (a fresh data set: its size factors are computed on these genes, as pp.vst does on adata[:, :800])
    small <- DESeqDataSetFromMatrix(d$counts[1:800, ], d$samples, d$design)
    write_gz(gene_table(assay(varianceStabilizingTransformation(small, blind = TRUE)), seq_len(800)),
             "pasilla800_vst_full")
  }
}

writeLines(c(
  R.version.string,
  paste("DESeq2", packageVersion("DESeq2")),
  paste("edgeR", packageVersion("edgeR")),
  paste("limma", packageVersion("limma")),
  system2(python, c(file.path(ref_dir, "simulate_transforms.py"), "--versions"), stdout = TRUE)
), file.path(out_dir, "transforms_versions.txt"))
message("done")
