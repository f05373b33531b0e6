#!/usr/bin/env Rscript
# Reference outputs of DESeq2 1.38 lfcShrink(type = "apeglm") (apeglm 1.29, method "nbinomCR") and
# lfcShrink(type = "normal") for the pbglm shrinkage parity tests (tests/test_shrink_parity.py).
#
# Run from the repository root:
#     Rscript tests/reference/make_shrink_reference.R            # all cases below
#     Rscript tests/reference/make_shrink_reference.R airway     # only the named case(s)
#
# apeglm is installed in /opt/R-next (see ../shared/r-src/install.sh); DESeq2 comes from the system library.
# Writes tests/reference/out/shrink_<case>.csv.gz, shrink_<case>_params.json and shrink_versions.txt.
# Rows: genes with DESeq2 baseMean > 1 (the tests compare genes with baseMean > 10); s-values are
# computed by apeglm over all genes, as lfcShrink does.

.libPaths(c("/opt/R-next", .libPaths()))
suppressPackageStartupMessages({
  library(jsonlite)
  library(DESeq2)
  library(apeglm)
})

script_path <- local({
  a <- grep("^--file=", commandArgs(trailingOnly = FALSE), value = TRUE)
  if (length(a)) normalizePath(sub("^--file=", "", a[1])) else normalizePath("tests/reference/make_shrink_reference.R")
})
ref_dir <- dirname(script_path)
repo_dir <- normalizePath(file.path(ref_dir, "..", ".."))
data_dir <- file.path(ref_dir, "data")
bundled_dir <- file.path(repo_dir, "src", "pbglm", "datasets", "data")
out_dir <- file.path(ref_dir, "out")
SIG <- 8

load_dataset <- function(name) {
  if (name == "airway") {
    counts <- read.csv(file.path(bundled_dir, "airway_counts.csv.gz"), row.names = 1, check.names = FALSE)
    samples <- read.csv(file.path(bundled_dir, "airway_samples.csv"), row.names = 1, check.names = FALSE,
                        stringsAsFactors = FALSE)
  } else if (name == "pasilla") {
    counts <- read.csv(file.path(bundled_dir, "pasilla_counts.csv.gz"), row.names = 1, check.names = FALSE)
    samples <- read.csv(file.path(bundled_dir, "pasilla_samples.csv"), check.names = FALSE, stringsAsFactors = FALSE)
    rownames(samples) <- sub("fb$", "", samples$file)
  } else {
    counts <- read.csv(file.path(data_dir, paste0(name, "_counts.csv.gz")), row.names = 1, check.names = FALSE)
    samples <- read.csv(file.path(data_dir, paste0(name, "_samples.csv")), row.names = 1, check.names = FALSE,
                        stringsAsFactors = FALSE)
  }
  counts <- as.matrix(counts)
  storage.mode(counts) <- "integer"
  list(counts = counts, samples = samples[colnames(counts), , drop = FALSE])
}

# case: dataset, design, factor levels (first = reference), numeric columns, the coefficient to shrink,
# optional releveled refits (a level comparison shrunk as a coefficient) and an lfcThreshold run
cases <- list(
  list(case = "airway", dataset = "airway", design = "~ cell + dex",
       levels = list(cell = c("N052611", "N061011", "N080611", "N61311"), dex = c("untrt", "trt")),
       coef = "dex_trt_vs_untrt", threshold = 1),
  list(case = "pasilla", dataset = "pasilla", design = "~ type + condition",
       levels = list(type = c("paired-end", "single-read"), condition = c("untreated", "treated")),
       coef = "condition_treated_vs_untreated"),
  list(case = "three_groups", dataset = "sim_three_groups", design = "~ Batch + Drug",
       levels = list(Batch = c("b1", "b2"), Drug = c("ctrl", "DrugA", "DrugB")),
       coef = "Drug_DrugA_vs_ctrl",
       relevel = list(factor = "Drug", ref = "DrugB", coef = "Drug_DrugA_vs_DrugB")),
  list(case = "patients", dataset = "sim_patients", design = "~ Patient + Visit + Drug",
       levels = list(Patient = paste0("P", 1:6), Visit = c("v1", "v2"), Drug = c("ctrl", "DrugA")),
       coef = "Drug_DrugA_vs_ctrl"),
  list(case = "numeric", dataset = "sim_numeric", design = "~ age + condition",
       levels = list(condition = c("ctrl", "treated")), numeric = "age",
       coef = "condition_treated_vs_ctrl")
)
only <- commandArgs(trailingOnly = TRUE)
if (length(only)) cases <- Filter(function(cs) cs$case %in% only, cases)

coldata <- function(cs, samples, levels) {
  cd <- data.frame(row.names = rownames(samples))
  for (f in names(levels)) cd[[f]] <- factor(as.character(samples[[f]]), levels = levels[[f]])
  for (v in cs$numeric) cd[[v]] <- as.numeric(samples[[v]])
  cd
}

apeglm_shrink <- function(dds, coef, threshold = 0) {
  t0 <- proc.time()[["elapsed"]]
  out <- suppressMessages(lfcShrink(dds, coef = coef, type = "apeglm", lfcThreshold = threshold,
                                    svalue = TRUE, returnList = TRUE))
  list(res = out$res, fit = out$fit, seconds = proc.time()[["elapsed"]] - t0)
}

normal_prior_var <- function(dds) {
  # what lfcShrink(type = "normal", coef = ) estimates before its betaPrior = TRUE refit
  betaCols <- grep("log2 fold change \\(MLE\\)", mcols(mcols(dds))$description)
  names(mcols(dds))[betaCols] <- paste0("MLE_", names(mcols(dds))[betaCols])
  attr(dds, "modelMatrixType") <- "standard"
  as.list(estimateBetaPriorVar(dds))
}

versions <- c(
  sprintf("R %s", R.version.string),
  sprintf("DESeq2 %s", packageVersion("DESeq2")),
  sprintf("apeglm %s", packageVersion("apeglm")),
  sprintf("RcppNumerical %s", packageVersion("RcppNumerical")),
  sprintf("date %s", format(Sys.time(), "%Y-%m-%d %H:%M:%S %Z")),
  "commands: dds <- DESeq(DESeqDataSetFromMatrix(counts, coldata, design));",
  "  lfcShrink(dds, coef = <coef>, type = 'apeglm', svalue = TRUE[, lfcThreshold = T])   # apeMethod 'nbinomCR'",
  "  lfcShrink(dds, coef = <coef>, type = 'normal')",
  "  releveled: relevel(<factor>, ref) + DESeq() again, then lfcShrink(type = 'apeglm', coef = <new coef>)"
)

for (cs in cases) {
  message("case ", cs$case)
  d <- load_dataset(cs$dataset)
  cd <- coldata(cs, d$samples, cs$levels)
  dds <- suppressMessages(DESeq(DESeqDataSetFromMatrix(d$counts, cd, design = as.formula(cs$design))))
  stopifnot(cs$coef %in% resultsNames(dds))
  ape <- apeglm_shrink(dds, cs$coef)
  nrm <- suppressMessages(lfcShrink(dds, coef = cs$coef, type = "normal"))
  keep <- !is.na(mcols(dds)$baseMean) & mcols(dds)$baseMean > 1
  tab <- data.frame(
    gene = rownames(dds),
    baseMean = mcols(dds)$baseMean,
    apeglm_lfc = ape$res$log2FoldChange,
    apeglm_se = ape$res$lfcSE,
    apeglm_svalue = ape$res$svalue,
    apeglm_conv = ape$fit$diag[, "conv"],
    normal_lfc = nrm$log2FoldChange,
    normal_se = nrm$lfcSE,
    stringsAsFactors = FALSE
  )
  params <- list(
    case = cs$case, design = cs$design, coef = cs$coef, resultsNames = resultsNames(dds),
    apeglm_prior_scale = ape$fit$prior.control$prior.scale,
    apeglm_prior_var = ape$fit$prior.control$prior.var,
    apeglm_seconds = ape$seconds,
    apeglm_n_not_converged = sum(ape$fit$diag[, "conv"] != 0, na.rm = TRUE),
    normal_beta_prior_var = normal_prior_var(dds)
  )
  if (!is.null(cs$threshold)) {
    apeT <- apeglm_shrink(dds, cs$coef, threshold = cs$threshold)
    tab$apeglm_thr_svalue <- apeT$res$svalue
    params$threshold <- cs$threshold
  }
  if (!is.null(cs$relevel)) {
    rl <- cs$relevel
    lv <- cs$levels
    lv[[rl$factor]] <- c(rl$ref, setdiff(lv[[rl$factor]], rl$ref))
    cd2 <- coldata(cs, d$samples, lv)
    dds2 <- suppressMessages(DESeq(DESeqDataSetFromMatrix(d$counts, cd2, design = as.formula(cs$design))))
    stopifnot(rl$coef %in% resultsNames(dds2))
    ape2 <- apeglm_shrink(dds2, rl$coef)
    tab$relevel_apeglm_lfc <- ape2$res$log2FoldChange
    tab$relevel_apeglm_se <- ape2$res$lfcSE
    tab$relevel_apeglm_svalue <- ape2$res$svalue
    params$relevel <- c(rl, list(apeglm_prior_scale = ape2$fit$prior.control$prior.scale))
  }
  tab <- tab[keep, , drop = FALSE]
  for (j in seq_along(tab)) if (is.double(tab[[j]])) tab[[j]] <- signif(tab[[j]], SIG)
  con <- gzfile(file.path(out_dir, sprintf("shrink_%s.csv.gz", cs$case)), "w", compression = 9)
  write.csv(tab, con, row.names = FALSE, na = "NA", quote = FALSE)
  close(con)
  writeLines(toJSON(params, auto_unbox = TRUE, digits = NA, pretty = TRUE),
             file.path(out_dir, sprintf("shrink_%s_params.json", cs$case)))
}
writeLines(versions, file.path(out_dir, "shrink_versions.txt"))
