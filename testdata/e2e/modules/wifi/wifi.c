#include <linux/module.h>
#include <linux/init.h>

static int __init wifi_init(void) { return 0; }
static void __exit wifi_exit(void) { }
module_init(wifi_init);
module_exit(wifi_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("dkms-guard end-to-end test module");
