/* Flags that would do nothing for the model or the attack chosen are refused by name, not
 * ignored: a user who passes --clst to a classifier or --steps to FGSM has made a mistake. */
#include <stdio.h>
#include <string.h>
#include "cli.h"
#include "train_proto.h"

bool cli_given(int argc, char **argv, const char *name) {
    size_t n = strlen(name);
    for (int i = 1; i < argc; i++)
        if (strncmp(argv[i], "--", 2) == 0 && strncmp(argv[i] + 2, name, n) == 0 && (argv[i][2 + n] == 0 || argv[i][2 + n] == '='))
            return true;
    return false;
}

/* The first of the names (a NULL-terminated list) given on the command line, or NULL. */
static const char *first_given(int argc, char **argv, const char *const *names) {
    for (; *names; names++) if (cli_given(argc, argv, *names)) return *names;
    return NULL;
}

static int refuse(const char *cmd, const char *flag, const char *why) {
    fprintf(stderr, "finch %s: --%s does nothing %s; drop it\n", cmd, flag, why);
    return 2;
}

int cli_unused_attack_flags(int argc, char **argv, const char *attack, bool suite) {
    /* every attack-specific flag, and the ones each attack uses */
    static const char *const all[] = { "attack", "eps", "alpha", "steps", "norm", "target", "kappa", "search-steps", "c", "lr",
                                       "beta", "rule", "restarts", "queries", "save-adv", "eps-list", NULL };
    static const struct { const char *name, *flags; } uses[] = {   /* space-separated, spaces around */
        { "fgsm", " eps target " },
        { "fgsm-rs", " eps alpha target " },
        { "pgd", " eps alpha steps norm target " },
        { "bim", " eps steps target " },
        { "ifgsm", " eps steps target " },
        { "mim", " eps steps target " },
        { "apgd-ce", " eps steps norm target restarts " },
        { "apgd-dlr", " eps steps norm target restarts " },
        { "apgd-t", " eps steps norm target restarts " },
        { "square", " eps queries target " },
        { "cw", " target kappa steps search-steps c lr " },
        { "ead", " target kappa steps search-steps c lr beta rule " },
    };
    const char *mine = " eps-list ";   /* --suite's */
    if (!suite)
        for (size_t k = 0; k < sizeof uses / sizeof uses[0]; k++)
            if (strcmp(uses[k].name, attack) == 0) mine = uses[k].flags;
    char why[96], key[32];
    if (suite) snprintf(why, sizeof why, "with --suite, which runs its own attacks at every --eps-list radius");
    else snprintf(why, sizeof why, "for --attack %s", attack);
    for (const char *const *f = all; *f; f++) {
        if (!suite && (strcmp(*f, "attack") == 0 || strcmp(*f, "save-adv") == 0)) continue;
        snprintf(key, sizeof key, " %s ", *f);
        if (!strstr(mine, key) && cli_given(argc, argv, *f))
            return refuse("attack", *f, strcmp(*f, "eps-list") == 0 ? "without --suite (--eps is the radius)" : why);
    }
    return 0;
}

int cli_unused_train_flags(int argc, char **argv, const char *model, const char *adv) {
    static const char *const classifier[] = { "lr", "wd", "optim", "schedule", NULL };
    static const char *const attention[] = { "clst-att", "sep-att", "ce-att", "attention-dropout", NULL };
    static const char *const prototypes[] = { "clst", "sep", "clst-att", "sep-att", "l1", "push-start", "push-every", "last-iters",
                                              "lr-last", "prototypes-per-class", "proto-depth", NULL };
    static const char *const protopnet_only[] = { "clst", "sep", NULL };
    ProtoKind kind;
    const char *trunk = model, *f;
    bool proto = protonet_parse_arch(model, &kind, &trunk);
    static ProtoArgs unused;   /* only the table's names are read */
    static const CliArg proto_table[] = { PROTO_ARGS(unused), { "prototypes-per-class", ARG_INT, NULL, 0, 0, "" },
                                          { "proto-depth", ARG_INT, NULL, 0, 0, "" } };
    for (size_t i = 0; !proto && i < sizeof proto_table / sizeof proto_table[0]; i++)
        if (cli_given(argc, argv, proto_table[i].name))
            return refuse("train", proto_table[i].name, "for a classifier (it sets up prototype networks)");
    if (proto && (f = first_given(argc, argv, classifier)))
        return refuse("train", f, "for a prototype network, whose recipe sets its optimizers (--lr-features, --lr-head, "
                      "--lr-last, --lr-step)");
    if (proto && kind == PROTO_PPNET && (f = first_given(argc, argv, attention))) return refuse("train", f, "for ProtoPNet (no attention)");
    if (proto && kind == PROTO_AP && (f = first_given(argc, argv, prototypes))) return refuse("train", f, "for Ours-A (no prototypes)");
    if (proto && kind == PROTO_FR && (f = first_given(argc, argv, protopnet_only)))
        return refuse("train", f, "for Ours-FR (its costs are --clst-att and --sep-att)");
    if (strcmp(adv, "pgd") != 0 && cli_given(argc, argv, "steps")) return refuse("train", "steps", "without --adv pgd");
    if (strcmp(adv, "none") == 0 && (f = first_given(argc, argv, (const char *const[]){ "eps", "alpha", NULL })))
        return refuse("train", f, "without --adv");
    bool resnet = strncmp(trunk, "resnet", 6) == 0, densenet = strncmp(trunk, "densenet", 8) == 0, vgg = strncmp(trunk, "vgg", 3) == 0;
    if (!resnet && !densenet && cli_given(argc, argv, "blocks")) return refuse("train", "blocks", "for a model without ResNet or DenseNet blocks");
    if (!densenet && cli_given(argc, argv, "stem")) return refuse("train", "stem", "for a model that is not a DenseNet");
    if (!vgg && cli_given(argc, argv, "vgg-cfg")) return refuse("train", "vgg-cfg", "for a model that is not a VGG");
    if ((proto || strcmp(trunk, "small_cnn") != 0) && cli_given(argc, argv, "feature-dim"))
        return refuse("train", "feature-dim", "for a model that is not the small CNN classifier");
    return 0;
}
